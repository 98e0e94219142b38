"""Compare runs side by side: a table (Markdown and CSV), overlaid training curves, accuracy against cost.

Each path given is a run folder, a sweep folder (its runs/) or a folder of run folders (runs/).
The table's rows come from `run_table.run_row`, the same rows a sweep's results.csv holds.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from cifarlab import tables
from cifarlab.atomic import output_folder, write_text
from cifarlab.errors import CifarlabError
from cifarlab.reports.compare_plots import plot_accuracy_vs_cost, plot_curves
from cifarlab.reports.run_table import run_row
from cifarlab.runs import RECIPE, Run, load_run
from cifarlab.sweeps.sweep import RUNS

# (row key, Markdown heading, format) in table order.
COLUMNS = [("name", "name", "{}"), ("model", "model", "{}"), ("test_top1", "test top-1 (%)", "{:.2f}"),
           ("test_top5", "top-5 (%)", "{:.2f}"), ("test_loss", "loss", "{:.4f}"), ("test_ece", "ECE", "{:.4f}"),
           ("params", "params (M)", "params"), ("macs", "mult-adds (M)", "macs"),
           ("train_time_s", "train time (s)", "{:.1f}"), ("images_per_s", "images/s", "{:.0f}")]
# Shown only when some run was scored on corruptions (`cifarlab robustness eval`).
ROBUSTNESS_COLUMNS = [("corrupted_top1", "corrupted top-1 (%)", "{:.2f}"), ("mce", "mCE (%)", "{:.2f}")]
CSV_COLUMNS = [key for key, _, _ in COLUMNS + ROBUSTNESS_COLUMNS] + ["val_best_top1", "run"]


@dataclass
class Comparison:
    """The runs compared, their table rows, and the files written."""

    runs: list[Run]
    rows: list[dict]
    markdown: str
    files: list[Path]


def run_folders(path: str | Path) -> list[Path]:
    """The run folders `path` stands for: itself, its sweep's runs/, or the run folders inside it."""
    path = Path(path)
    if (path / RECIPE).is_file():
        return [path]
    holder = path / RUNS if (path / RUNS).is_dir() else path
    found = sorted(p for p in holder.iterdir() if (p / RECIPE).is_file()) if holder.is_dir() else []
    grid_order = _grid_order(path)
    found.sort(key=lambda folder: grid_order.get(folder.name, len(grid_order)))  # stable: the rest by name
    if not found:
        raise CifarlabError(f"{path} is neither a run folder (with {RECIPE}) nor a sweep or runs folder holding any; "
                            "give run folders (runs/<name>) or sweep folders (sweeps/<name>)")
    return found


def _grid_order(sweep_dir: Path) -> dict[str, int]:
    """Run folder name -> its row in the sweep's results.csv (grid order); empty for anything else."""
    try:
        with open(sweep_dir / "results.csv", newline="") as file:
            return {Path(row["run"]).name: index for index, row in enumerate(csv.DictReader(file)) if row.get("run")}
    except (OSError, KeyError, csv.Error):
        return {}


def _names(folders: list[Path]) -> list[str]:
    """Folder names, with the parent folder's name prefixed where two runs share one (seed0 of two sweeps)."""
    plain = [f.name for f in folders]
    if len(set(plain)) == len(plain):
        return plain
    return [f"{f.parent.parent.name if f.parent.name == RUNS else f.parent.name}/{f.name}" for f in folders]


def _format(value, style: str) -> str:
    if value is None or value == "":
        return "-"
    if style == "params":
        return f"{value / 1e6:.2f}"
    if style == "macs":
        return f"{value / 1e6:.1f}"
    return style.format(value)


def markdown_table(rows: list[dict]) -> str:
    """The comparison as a Markdown table, one row per run."""
    robustness = [c for c in ROBUSTNESS_COLUMNS if any(row.get(c[0]) is not None for row in rows)]
    columns = COLUMNS + robustness
    return tables.markdown_table([heading for _, heading, _ in columns],
                                 [[_format(row.get(key), style) for key, _, style in columns] for row in rows])


def compare_runs(paths: list[str | Path], out: str | Path) -> Comparison:
    """Read every run behind `paths` and write report.md, report.csv, curves.png and accuracy_vs_cost.png into `out`."""
    # A run named twice (its folder and its sweep) is compared once.
    folders = list(dict.fromkeys(folder.resolve() for path in paths for folder in run_folders(path)))
    runs = [load_run(folder) for folder in folders]
    rows = []
    for run, name in zip(runs, _names(folders)):
        rows.append({**run_row(run), "name": name})
    markdown = markdown_table(rows)
    names = [row["name"] for row in rows]
    # A folder made here is removed again if a later file fails (a full disk): no report without its plots.
    with output_folder(out, hint="pass another --out folder") as folder:
        write_text(folder / "report.md", f"# Run comparison\n\n{markdown}\n![training curves](curves.png)\n\n"
                                         "![accuracy against cost](accuracy_vs_cost.png)\n")
        # The CSV keeps raw numbers (parameters and multiply-adds as counts) for spreadsheets.
        write_text(folder / "report.csv", tables.csv_text(rows, CSV_COLUMNS))
        files = [folder / "report.md", folder / "report.csv", plot_curves(runs, names, folder / "curves.png"),
                 plot_accuracy_vs_cost(rows, folder / "accuracy_vs_cost.png")]
    return Comparison(runs=runs, rows=rows, markdown=markdown, files=files)

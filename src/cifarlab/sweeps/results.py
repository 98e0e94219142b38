"""A sweep's tables: results.csv (one row per run) and summary.md / summary.csv (mean ± sd over seeds per setting)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from cifarlab.atomic import write_text
from cifarlab.reports.run_table import run_row
from cifarlab.runs import load_run
from cifarlab.sweeps.sweep_point import Outcome
from cifarlab.tables import csv_text, markdown_table, mean_sd, mean_sd_cell

RESULT_COLUMNS = ["seed", "test_top1", "test_top5", "test_loss", "test_ece", "val_best_top1", "params",
                  "train_time_s", "wall_s", "run"]
# Summary columns: (results column, heading, decimals).
SUMMARY_METRICS = [("test_top1", "test top-1 (%)", 2), ("test_top5", "test top-5 (%)", 2), ("test_loss", "test loss", 4),
                   ("test_ece", "test ECE", 4), ("val_best_top1", "best val top-1 (%)", 2), ("train_time_s", "train time (s)", 1)]


def result_row(outcome: Outcome, sweep_dir: Path) -> dict:
    """The results.csv row of a finished run: its varied values, seed, scores, size, times and folder."""
    row = run_row(load_run(outcome.run_dir), with_macs=False)
    wall = outcome.wall_s
    return {**outcome.point.values, **outcome.point.extra, "seed": outcome.point.recipe.seed,
            **{k: row.get(k) for k in RESULT_COLUMNS if k in row},
            "wall_s": None if wall is None else round(wall, 1),
            "run": str(outcome.run_dir.relative_to(sweep_dir))}


def setting_keys(rows: list[dict]) -> list[str]:
    """The columns that set runs apart other than the seed: a summary row per combination of them."""
    keys = []
    for row in rows:
        keys += [k for k in row if k not in RESULT_COLUMNS and k not in keys]
    return keys


def summarise(rows: list[dict], reference: Optional[dict] = None) -> list[dict]:
    """Mean and sd over seeds of every metric, per setting, in the order settings first appear.

    `reference` ({"title", "key", "values": {value of key: number}}) adds the published value per setting.
    """
    keys = setting_keys(rows)
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(str(row.get(k)) for k in keys), []).append(row)
    summary = []
    for setting, members in groups.items():
        entry = dict(zip(keys, setting))
        entry["runs"] = len(members)
        entry["params"] = members[0].get("params")
        for column, _, _ in SUMMARY_METRICS:
            entry[f"{column}_mean"], entry[f"{column}_sd"] = mean_sd([m.get(column) for m in members])
        if reference:
            entry["reference"] = reference.get("values", {}).get(entry.get(reference.get("key")))
        summary.append(entry)
    return summary


def summary_markdown(summary: list[dict], reference: Optional[dict] = None) -> str:
    """The summary as a Markdown table: setting, runs, parameters (M) and mean ± sd of each metric."""
    keys = [k for k in summary[0] if k not in ("runs", "params", "reference") and not k.endswith(("_mean", "_sd"))] if summary else []
    headings = keys + ["runs", "params (M)"] + [heading for _, heading, _ in SUMMARY_METRICS]
    if reference:
        headings.append(reference.get("title", "reference"))
    rows = []
    for entry in summary:
        cells = [str(entry[k]) for k in keys] + [str(entry["runs"])]
        cells.append(f"{entry['params'] / 1e6:.2f}" if entry.get("params") else "-")
        cells += [mean_sd_cell(entry[f"{c}_mean"], entry[f"{c}_sd"], d) for c, _, d in SUMMARY_METRICS]
        if reference:
            cells.append("-" if entry.get("reference") is None else f"{entry['reference']}")
        rows.append(cells)
    return markdown_table(headings, rows)


def write_results(sweep_dir: Path, rows: list[dict], reference: Optional[dict] = None) -> None:
    """results.csv, summary.csv and summary.md of the rows so far (rewritten whole after every run)."""
    sweep_dir = Path(sweep_dir)
    columns = setting_keys(rows) + RESULT_COLUMNS
    write_text(sweep_dir / "results.csv", csv_text(rows, columns))
    summary = summarise(rows, reference)
    summary_columns = list(summary[0]) if summary else []
    write_text(sweep_dir / "summary.csv", csv_text(summary, summary_columns))
    write_text(sweep_dir / "summary.md", summary_markdown(summary, reference))

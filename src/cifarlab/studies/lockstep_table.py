"""The table of a lockstep study: per run, and mean ± sd over seeds per variant, as CSV and Markdown."""

from __future__ import annotations

from pathlib import Path

from cifarlab.runs import load_run
from cifarlab.tables import markdown_table, mean_sd, mean_sd_cell

# (column, heading, decimals); accuracies in %, times in seconds.
SCORE_COLUMNS = [("final_val_top1", "final val top-1 (%)", 2), ("best_val_top1", "best val top-1 (%)", 2),
                 ("test_top1", "test top-1 (%) of the val-selected model", 2), ("train_time_s", "train time (s)", 1)]
RUN_COLUMNS = ["variant", "seed"] + [column for column, _, _ in SCORE_COLUMNS] + ["wall_s", "run"]


def _percent(value) -> float | None:
    return None if value is None else round(100 * float(value), 2)


def run_scores(run_dir: Path) -> dict:
    """Final and best validation top-1, test top-1 of the best-on-validation checkpoint, and training time.

    The run's final evaluation scores the test set with best.pt (the validation-selected weights)
    whenever there is a validation split, so eval_test.json holds that number.
    """
    run = load_run(run_dir)
    val = [r["val_top1"] for r in run.history if r.get("val_top1") is not None]
    times = [r["time_s"] for r in run.history if r.get("time_s") is not None]
    test = run.test or {}
    return dict(final_val_top1=_percent(val[-1]) if val else None, best_val_top1=_percent(max(val)) if val else None,
                test_top1=_percent(test.get("top1")), train_time_s=round(sum(times), 3) if times else None)


def summarise(rows: list[dict]) -> list[dict]:
    """One row per variant (in study order): runs, and mean and sd over seeds of every score."""
    variants = list(dict.fromkeys(row["variant"] for row in rows))
    summary = []
    for variant in variants:
        members = [row for row in rows if row["variant"] == variant]
        entry = {"variant": variant, "runs": len(members)}
        for column, _, _ in SCORE_COLUMNS:
            entry[f"{column}_mean"], entry[f"{column}_sd"] = mean_sd([m.get(column) for m in members])
        summary.append(entry)
    return summary


def summary_markdown(summary: list[dict], studied: str) -> str:
    """The summary as a Markdown table, one row per variant of `studied`."""
    headings = [studied, "runs"] + [heading for _, heading, _ in SCORE_COLUMNS]
    rows = [[str(entry["variant"]), str(entry["runs"])]
            + [mean_sd_cell(entry[f"{c}_mean"], entry[f"{c}_sd"], d) for c, _, d in SCORE_COLUMNS] for entry in summary]
    return markdown_table(headings, rows)

"""The files of a BatchNorm study: the raw arrays (.npz), a short table (Markdown and CSV) and the settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cifarlab.analysis.bn_study import BNStudy
from cifarlab.analysis.bn_study_plots import plot_bn_study
from cifarlab.atomic import atomic_path, make_dirs, write_text
from cifarlab.tables import csv_text, markdown_table

ARRAYS = "bn_study.npz"
TABLE_MD = "bn_study.md"
TABLE_CSV = "bn_study.csv"
SETTINGS = "bn_study.json"
TABLE_COLUMNS = ["model", "lr", "final_train_loss", "val_top1", "max_path_loss_spread", "mean_gradient_change",
                 "max_beta_smoothness", "time_s"]


def study_arrays(study: BNStudy) -> dict[str, np.ndarray]:
    """Every recorded number, indexed [model, lr, ...] in the order of `study.models` and `study.lrs`."""

    def stack(pick) -> np.ndarray:
        return np.stack([np.stack([pick(study.run(m, lr)) for lr in study.lrs]) for m in study.models])

    return dict(
        models=np.array(study.models), lrs=np.array(study.lrs), step_multiples=np.array(study.step_multiples),
        probe_steps=study.runs[0].trace.probe_steps,
        loss=stack(lambda r: r.trace.loss),  # [model, lr, step]
        path_loss=stack(lambda r: r.trace.path_loss),  # [model, lr, probe, step size]
        gradient_change=stack(lambda r: r.trace.gradient_change),  # [model, lr, probe, step size]
        gradient_norm=stack(lambda r: r.trace.gradient_norm),  # [model, lr, probe]
        beta_smoothness=stack(lambda r: r.trace.smoothness),  # [model, lr, probe]
        val_top1=stack(lambda r: np.array(r.val_top1)), time_s=stack(lambda r: np.array(r.time_s)),
    )


def table_rows(study: BNStudy) -> list[dict]:
    """Per net and learning rate: the last tenth's mean training loss, validation top-1 (%), landscape summaries, time."""
    rows = []
    for run in study.runs:
        trace = run.trace
        tail = trace.loss[-max(1, len(trace.loss) // 10):]
        spread = trace.path_loss.max(1) - trace.path_loss.min(1) if trace.path_loss.size else np.zeros(1)
        rows.append(dict(model=run.model, lr=run.lr, final_train_loss=round(float(tail.mean()), 4),
                         val_top1=round(100 * run.val_top1, 2), max_path_loss_spread=round(float(spread.max()), 4),
                         mean_gradient_change=round(float(trace.gradient_change.mean()), 4),
                         max_beta_smoothness=round(float(trace.smoothness.max()), 3), time_s=round(run.time_s, 1)))
    return rows


def table_markdown(rows: list[dict]) -> str:
    headings = ["net", "lr", "train loss (last 10%)", "val top-1 (%)", "max loss spread along g",
                "mean gradient change", "max beta-smoothness", "time (s)"]
    return markdown_table(headings, [[f"{row[c]:g}" if isinstance(row[c], float) else str(row[c]) for c in TABLE_COLUMNS]
                                     for row in rows])


def write_bn_study(study: BNStudy, out: str | Path, settings: dict) -> str:
    """Write the arrays, table, settings and three figures into `out`; returns the Markdown table."""
    out = make_dirs(out)
    with atomic_path(out / ARRAYS) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **study_arrays(study))
    rows = table_rows(study)
    table = table_markdown(rows)
    write_text(out / TABLE_MD, table)
    write_text(out / TABLE_CSV, csv_text(rows, TABLE_COLUMNS))
    write_text(out / SETTINGS, json.dumps(dict(settings, steps=study.steps, probe_every=study.probe_every,
                                               step_multiples=study.step_multiples, lrs=study.lrs), indent=2))
    plot_bn_study(study, out)
    return table

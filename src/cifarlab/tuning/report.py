"""A study's report, written into its folder: the trial table (CSV and Markdown), the best trial and its
retrain command, the optimisation history and the parameter importances.

`cifarlab report STUDY_DIR` writes it; so does `cifarlab tune` when its workers are done.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from cifarlab.atomic import make_dirs, write_text
from cifarlab.errors import CifarlabError
from cifarlab.tables import csv_text, markdown_table
from cifarlab.tuning.liveness import RETRY_OF
from cifarlab.tuning.objective import COMMAND, DIVERGED
from cifarlab.tuning.optuna_extra import import_optuna
from cifarlab.tuning.pruning import RUN_DIR
from cifarlab.tuning.report_plots import HISTORY_PLOT, IMPORTANCE_PLOT, plot_history, plot_importances
from cifarlab.tuning.storage import IDENTITY_ATTR, is_study_folder, load_study, read_place

TABLE_CSV, TABLE_MD = "trials.csv", "trials.md"
MIN_TRIALS_FOR_IMPORTANCE = 2  # fANOVA compares complete trials: one tells nothing


@dataclass
class StudyReport:
    """The report's Markdown, its table rows and the files written."""

    markdown: str
    rows: list[dict]
    files: list[Path]
    best: str  # the best trial in a few lines: its value, its values and its retrain command


def trial_rows(study) -> list[dict]:
    """One row per trial that started: number, parameters, value, state, wall time, last report, run folder."""
    trials = study.get_trials(deepcopy=False)
    retried_as = {t.user_attrs[RETRY_OF]: t.number for t in trials if t.user_attrs.get(RETRY_OF) is not None}
    return [_row(trial, retried_as.get(trial.number)) for trial in trials if trial.datetime_start is not None]


def _row(trial, retried_as: Optional[int]) -> dict:
    wall = None
    # A cut-off trial ended when a later start noticed its dead worker: that span is no training time.
    if trial.datetime_complete is not None and retried_as is None:
        wall = round((trial.datetime_complete - trial.datetime_start).total_seconds(), 1)
    note = f"cut off; retried as {retried_as:04d}" if retried_as is not None else "diverged" if DIVERGED in trial.user_attrs else None
    last_step = trial.last_step
    return {"number": trial.number, **trial.params, "value": trial.value if trial.state.name == "COMPLETE" else None,
            "state": trial.state.name.lower(), "wall_s": wall, "last_epoch": last_step,
            "last_report": None if last_step is None else trial.intermediate_values[last_step],
            "retry_of": trial.user_attrs.get(RETRY_OF), "run": trial.user_attrs.get(RUN_DIR), "note": note}


def write_study_report(folder: str | Path, out: Optional[str | Path] = None) -> StudyReport:
    """Write trials.csv, trials.md and the plots into `out` (default: the study folder); returns the report."""
    folder = Path(folder)
    out = Path(out) if out is not None else folder
    if not is_study_folder(folder):
        raise CifarlabError(f"{folder} is not a study folder (no tune.json or study.db); give the folder `cifarlab tune` wrote")
    import_optuna()
    study = load_study(read_place(folder))
    metric = _metric_name(study)
    maximise = study.direction.name == "MAXIMIZE"
    params = list(dict.fromkeys(key for trial in study.get_trials(deepcopy=False) for key in trial.params))
    rows = trial_rows(study)
    columns = ["number", *params, "value", "state", "wall_s", "last_epoch", "retry_of", "run", "note"]
    make_dirs(out)
    files = [out / TABLE_CSV, out / HISTORY_PLOT]
    write_text(files[0], csv_text(rows, columns))
    plot_history(rows, metric, maximise, files[1])
    importances, importance_note = _importances(study)
    if importances:
        files.append(plot_importances(importances, out / IMPORTANCE_PLOT))
    markdown = _markdown(study, rows, params, metric, importances, importance_note)
    write_text(out / TABLE_MD, markdown)
    files.insert(1, out / TABLE_MD)
    return StudyReport(markdown, rows, files, "\n".join(_best_section(study, metric)[2:]).strip())


def _metric_name(study) -> str:
    identity = study.user_attrs.get(IDENTITY_ATTR) or {}
    return identity.get("metric", "value")


def _importances(study) -> tuple[Optional[dict], str]:
    """Optuna's parameter importances, or why there are none yet."""
    optuna = import_optuna()
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCE:
        return None, (f"Parameter importance needs at least {MIN_TRIALS_FOR_IMPORTANCE} complete trials; "
                      f"this study has {len(complete)}. Run more trials (`--trials N`) for it.")
    try:
        return optuna.importance.get_param_importances(study), ""
    except (RuntimeError, ValueError, ZeroDivisionError) as exc:  # e.g. every complete trial has the same value
        return None, f"Parameter importance could not be computed from these trials ({exc})."


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _markdown(study, rows: list[dict], params: list[str], metric: str, importances: Optional[dict], note: str) -> str:
    counts = {state: sum(r["state"] == state for r in rows) for state in ("complete", "pruned", "fail", "running")}
    lines = [f"# Study {study.study_name}", "",
             f"{metric}, {'maximised' if study.direction.name == 'MAXIMIZE' else 'minimised'}; trials: "
             + ", ".join(f"{n} {state}" for state, n in counts.items() if n), ""]
    lines += _best_section(study, metric)
    headings = ["trial", *params, metric, "state", "wall (s)", "run"]
    cells = [[f"{row['number']:04d}", *(_cell(row.get(p)) for p in params), _cell(row["value"]),
              row["state"] + (f" (epoch {row['last_epoch']})" if row["state"] == "pruned" and row["last_epoch"] else "")
              + (f" ({row['note']})" if row["note"] else ""), _cell(row["wall_s"]), row["run"] or "-"] for row in rows]
    lines += ["## Trials", "", markdown_table(headings, cells), "## Plots", "", f"![optimisation history]({HISTORY_PLOT})", ""]
    if importances:
        lines += [f"![parameter importance]({IMPORTANCE_PLOT})", "",
                  ", ".join(f"{name} {share:.2f}" for name, share in importances.items()), ""]
    else:
        lines += [note, ""]
    return "\n".join(lines)


def _best_section(study, metric: str) -> list[str]:
    try:
        best = study.best_trial
    except ValueError:  # no complete trial yet
        return ["No complete trial yet.", ""]
    return ["## Best trial", "", f"Trial {best.number:04d}: {metric} {best.value:.4f} with "
            + ", ".join(f"{k}={_cell(v)}" for k, v in best.params.items())
            + f" (run folder {best.user_attrs.get(RUN_DIR, '-')}). Retrain it, with its test evaluation:", "",
            f"    {best.user_attrs.get(COMMAND, '-')}", ""]

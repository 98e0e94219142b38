"""`cifarlab report STUDY_DIR`: the trial table, the best trial's retrain command, and the two plots."""

from __future__ import annotations

import csv
import shutil

import optuna
import pytest
from PIL import Image

from cifarlab.cli import main


@pytest.mark.slow
def test_report_of_a_study_folder_writes_the_table_the_best_trial_and_both_plots(seeded_study, tmp_path, capsys):
    folder = tmp_path / "study"
    shutil.copytree(seeded_study, folder)
    for name in ("trials.csv", "trials.md", "optimization_history.png", "param_importances.png"):
        (folder / name).unlink()  # `cifarlab tune` wrote them at its end: the report must write them again
    assert main(["report", str(folder)]) == 0
    study = optuna.load_study(study_name=seeded_study.name, storage=f"sqlite:///{folder / 'study.db'}")
    rows = list(csv.DictReader(open(folder / "trials.csv")))
    assert [int(r["number"]) for r in rows] == [t.number for t in study.trials]
    assert [r["state"] for r in rows] == [t.state.name.lower() for t in study.trials]
    assert all(float(r["wall_s"]) > 0 and r["optim.lr"] for r in rows)
    best = study.best_trial
    assert float(rows[best.number]["value"]) == best.value
    markdown = (folder / "trials.md").read_text()
    assert f"Trial {best.number:04d}: val.top1 {best.value:.4f}" in markdown and best.user_attrs["command"] in markdown
    assert "| trial | optim.lr | val.top1 | state | wall (s) | run |" in markdown
    for plot in ("optimization_history.png", "param_importances.png"):
        with Image.open(folder / plot) as image:
            assert image.format == "PNG" and image.width > 300
    out = capsys.readouterr().out
    assert "## Best trial" in out and "trials.csv" in out


def test_importance_needs_two_complete_trials_and_the_report_says_so(tmp_path):
    folder = tmp_path / "one_trial"
    folder.mkdir()
    study = optuna.create_study(storage=f"sqlite:///{folder / 'study.db'}", study_name="one_trial", direction="maximize")
    distribution = optuna.distributions.FloatDistribution(1e-3, 1.0, log=True)
    study.add_trial(optuna.trial.create_trial(params={"optim.lr": 0.1}, distributions={"optim.lr": distribution}, value=0.5))
    assert main(["report", str(folder)]) == 0
    assert "needs at least 2 complete trials; this study has 1" in (folder / "trials.md").read_text()
    assert (folder / "optimization_history.png").is_file() and not (folder / "param_importances.png").exists()

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from cifarlab.cli import main
from cifarlab.runs.checkpoint import load_checkpoint
from tests.conftest import tiny_recipe_data

TINY = tiny_recipe_data(name="cli", train={"epochs": 2, "log_every": 1}, eval={"test": False})


def _recipe(tmp_path, **changes) -> Path:
    data = {**TINY, "out_dir": str(tmp_path / "runs"), **changes}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_every_verb_has_help_with_an_example(capsys):
    for verb in ("train", "eval", "models", "data", "recipes", "keys"):
        with pytest.raises(SystemExit) as exit_info:
            main([verb, "--help"])
        assert exit_info.value.code == 0
        assert "example" in capsys.readouterr().out


def test_mistyped_key_exits_2_with_the_closest_key_and_writes_nothing(tmp_path, capsys):
    code = main(["train", str(_recipe(tmp_path)), "optim.lrr=0.1"])
    err = capsys.readouterr().err
    assert code == 2
    assert "optim.lrr" in err and "optim.lr" in err
    assert not (tmp_path / "runs").exists()


def test_missing_data_folder_exits_2_naming_where_it_looked(tmp_path, capsys, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setenv("CIFARLAB_CACHE", str(tmp_path / "cache"))
    empty = tmp_path / "nodata"
    empty.mkdir()
    code = main(["train", str(_recipe(tmp_path)), f"data.root={empty}"])
    err = capsys.readouterr().err
    assert code == 2
    assert str(empty) in err and "cifar-10-python.tar.gz" in err
    assert not (tmp_path / "runs").exists()


def test_corrupt_checkpoint_exits_2_and_eval_writes_nothing(tmp_path, capsys, cifar10):
    assert main(["train", str(_recipe(tmp_path))]) == 0
    run = tmp_path / "runs" / "cli"
    best = run / "best.pt"
    best.write_bytes(best.read_bytes()[: best.stat().st_size // 2])
    before = sorted(p.name for p in run.iterdir())
    capsys.readouterr()
    code = main(["eval", str(run), "--split", "val"])
    err = capsys.readouterr().err
    assert code == 2 and "best.pt" in err and "corrupt or truncated" in err
    assert sorted(p.name for p in run.iterdir()) == before


@pytest.mark.slow
def test_eval_of_a_finished_run_reports_and_writes_outputs(tmp_path, capsys, cifar10):
    assert main(["train", str(_recipe(tmp_path))]) == 0
    run = tmp_path / "runs" / "cli"
    capsys.readouterr()
    assert main(["eval", str(run), "--split", "val", "--tta", "flip"]) == 0
    assert "val: top-1" in capsys.readouterr().out
    for name in ("eval_val.json", "confusion_val.csv", "confusion_val.png", "misclassified_val.png", "report.md"):
        assert (run / name).is_file(), name


@pytest.mark.slow
def test_ctrl_c_writes_a_checkpoint_exits_cleanly_and_the_run_resumes(tmp_path, cifar10):
    recipe = _recipe(tmp_path, train={**TINY["train"], "epochs": 200}, eval={"test": False})
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "cifarlab", "train", str(recipe)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "runs" / "cli" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in err
    step = load_checkpoint(tmp_path / "runs" / "cli" / "last.pt")["progress"]["step"]
    assert step >= 3
    leftovers = [p.name for p in (tmp_path / "runs" / "cli").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []

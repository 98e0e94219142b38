import json
import shutil
from pathlib import Path

import pytest
import torch

import cifarlab.training.loop as loop
from cifarlab.errors import CifarlabError
from cifarlab.models import create
from cifarlab.runner.run import run_recipe
from cifarlab.runs.checkpoint import load_checkpoint, save_checkpoint
from cifarlab.training.losses import get_loss, register_loss


def _epochs(run_dir):
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in lines if r["kind"] == "epoch"]


def _weights(run_dir, name="last.pt"):
    return load_checkpoint(run_dir / name)["model"]


@pytest.mark.slow
def test_a_run_writes_recipe_metrics_tensorboard_and_checkpoints(tiny_recipe):
    result = run_recipe(tiny_recipe())
    d = result.run_dir
    assert result.status == "finished"
    for name in ("recipe.yaml", "metrics.jsonl", "last.pt", "best.pt", "indices.json", "report.md"):
        assert (d / name).is_file(), name
    assert any((d / "tensorboard").iterdir())
    lines = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in lines if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    for key in ("step", "lr", "loss", "train_top1", "val_loss", "val_top1", "images_per_s"):
        assert epochs[-1][key] is not None
    assert load_checkpoint(d / "last.pt")["progress"]["step"] == epochs[-1]["step"]


@pytest.mark.slow
@pytest.mark.parametrize("stop_at", [3, 7])
def test_a_stopped_and_resumed_run_ends_with_bitwise_identical_weights(tiny_recipe, stop_at):
    recipe = tiny_recipe(augment={"mixup_alpha": 0.3, "cutmix_alpha": 1.0}, train={"ema_decay": 0.9, "epochs": 2},
                         model={"name": "convnet5", "options": {"dropout": 0.3}}, schedule={"name": "plateau"})
    straight = run_recipe(recipe)
    stopped = run_recipe(recipe.__class__(**{**vars(recipe), "name": "stopped"}), stop_after=stop_at)
    assert stopped.status == "stopped"
    assert load_checkpoint(stopped.run_dir / "last.pt")["progress"]["step"] == stop_at
    resumed = run_recipe(recipe, resume=stopped.run_dir)
    assert resumed.status == "finished"
    a, b = _weights(straight.run_dir), _weights(resumed.run_dir)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    ema_a = load_checkpoint(straight.run_dir / "last.pt")["ema"]
    ema_b = load_checkpoint(resumed.run_dir / "last.pt")["ema"]
    assert all(torch.equal(ema_a["module"][k], ema_b["module"][k]) for k in ema_a["module"])
    # The metrics file continues without duplicate steps, and the interrupted epoch logs the same
    # training loss and accuracy as the uninterrupted one (the epoch's sums are in last.pt).
    steps = [json.loads(x)["step"] for x in (resumed.run_dir / "metrics.jsonl").read_text().splitlines()
             if json.loads(x)["kind"] == "step"]
    assert steps == sorted(set(steps))
    for straight_epoch, resumed_epoch in zip(_epochs(straight.run_dir), _epochs(resumed.run_dir), strict=True):
        assert resumed_epoch["loss"] == straight_epoch["loss"]
        assert resumed_epoch["train_top1"] == straight_epoch["train_top1"]


@pytest.mark.slow
def test_gradient_accumulation_matches_the_full_batch_step(tiny_recipe):
    # Without BatchNorm (lenet), two half batches accumulate to the same update as one full batch.
    kw = dict(model={"name": "lenet", "options": {}}, augment={"cutout": 0})
    full = run_recipe(tiny_recipe(**kw, name="full", train={"epochs": 1}))
    split = run_recipe(tiny_recipe(**kw, name="split", train={"epochs": 1, "accumulate": 2}))
    a, b = _weights(full.run_dir), _weights(split.run_dir)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tiny_recipe):
    calls = {"n": 0}

    @register_loss("poisoned_after_8_steps")
    def poisoned(label_smoothing):
        real = get_loss("cross_entropy", label_smoothing)

        def loss(logits, targets):
            calls["n"] += 1
            value = real(logits, targets)
            return value * float("nan") if calls["n"] >= 9 else value

        return loss

    recipe = tiny_recipe(train={"epochs": 3, "log_every": 1, "loss": "poisoned_after_8_steps"})
    with pytest.raises(CifarlabError, match="NaN or infinite at step 9"):
        run_recipe(recipe)
    (run_dir,) = Path(recipe.out_dir).iterdir()
    state = load_checkpoint(run_dir / "last.pt")
    assert state["progress"]["step"] == 6  # the end of epoch 1, before the loss went bad
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


@pytest.mark.slow
@pytest.mark.parametrize("every, expected", [(1, [6, 12, 18]), (2, [12, 18]), (0, [18])])
def test_checkpoint_every_sets_the_epochs_that_write_last_pt(tiny_recipe, monkeypatch, every, expected):
    saved = []
    real = loop.Trainer.save

    def recording(self, name):
        if name == "last.pt":
            saved.append(self.progress.step)
        real(self, name)

    monkeypatch.setattr(loop.Trainer, "save", recording)
    result = run_recipe(tiny_recipe(train={"epochs": 3, "checkpoint_every": every}))
    assert saved == expected  # 6 steps per epoch; the end of training always writes last.pt
    assert load_checkpoint(result.run_dir / "last.pt")["progress"]["step"] == 18


def test_checkpoint_writes_are_atomic(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, step=1)
    before = path.read_bytes()

    def broken_save(obj, f, *a, **k):
        if hasattr(f, "write"):
            f.write(b"partial")
        else:
            open(f, "wb").write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        save_checkpoint(path, step=2)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, step=1)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CifarlabError, match="corrupt or truncated"):
        load_checkpoint(path)


@pytest.mark.slow
def test_airbench_methods_train_whitened_frozen_first_layer_and_resume_exactly(tiny_recipe):
    recipe = tiny_recipe(model={"name": "airbench94", "options": {"widths": [8, 16, 16]}, "init": "airbench"},
                         augment={"flip": "alternating", "cutout": 0}, optim={"bias_lr_scale": 64.0},
                         train={"lookahead": True, "epochs": 2, "label_smoothing": 0.2})
    straight = run_recipe(recipe)
    stopped = run_recipe(recipe.__class__(**{**vars(recipe), "name": "stopped"}), stop_after=4)
    resumed = run_recipe(recipe, resume=stopped.run_dir)
    a, b = _weights(straight.run_dir), _weights(resumed.run_dir)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # The whitening layer was fitted to the data and never trained.
    first = run_recipe(recipe.__class__(**{**vars(recipe), "name": "one_step", "train": recipe.train.__class__(
        **{**vars(recipe.train), "steps": 1})}))
    w1 = _weights(first.run_dir)["whiten.weight"]
    assert torch.equal(w1, a["whiten.weight"])
    assert load_checkpoint(straight.run_dir / "last.pt")["progress"]["finished"] is True


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("g++") or shutil.which("c++")), reason="torch.compile on CPU needs a C++ compiler")
def test_compiled_training_saves_plain_checkpoints_that_resume(tiny_recipe):
    # train.compile wraps only the forward model: checkpoints hold the plain module's keys, no `_orig_mod.`.
    recipe = tiny_recipe(train={"epochs": 1, "compile": True})
    stopped = run_recipe(recipe, stop_after=3)
    state = load_checkpoint(stopped.run_dir / "last.pt")
    plain = create(recipe.model.name, num_classes=10, **recipe.model.options).state_dict()
    assert list(state["model"]) == list(plain)
    resumed = run_recipe(recipe, resume=stopped.run_dir)
    assert resumed.status == "finished"
    final = _weights(resumed.run_dir)
    assert all(torch.isfinite(v).all() for v in final.values() if v.is_floating_point())
    assert load_checkpoint(resumed.run_dir / "last.pt")["progress"]["step"] == 6


def test_a_run_that_fails_before_its_first_checkpoint_leaves_no_folder(tiny_recipe):
    @register_loss("nan_from_the_start")
    def nan_loss(label_smoothing):
        real = get_loss("cross_entropy", label_smoothing)
        return lambda logits, targets: real(logits, targets) * float("nan")

    recipe = tiny_recipe(train={"epochs": 1, "log_every": 1, "loss": "nan_from_the_start"})
    with pytest.raises(CifarlabError, match="no checkpoint was written"):
        run_recipe(recipe)
    assert not any(Path(recipe.out_dir).iterdir())


def test_resume_refuses_a_run_whose_recipe_was_edited_and_leaves_its_files_alone(tiny_recipe):
    from cifarlab.runs.folder import load_run_recipe

    stopped = run_recipe(tiny_recipe(train={"epochs": 2}), stop_after=3)
    recipe_file = stopped.run_dir / "recipe.yaml"
    indices_before = (stopped.run_dir / "indices.json").read_bytes()
    recipe_file.write_text(recipe_file.read_text().replace("lr: 0.05", "lr: 0.01"))
    with pytest.raises(CifarlabError, match=r"changed since the run started \(optim.lr\).*--allow-changed optim.lr"):
        run_recipe(load_run_recipe(stopped.run_dir), resume=stopped.run_dir)
    assert (stopped.run_dir / "indices.json").read_bytes() == indices_before
    assert load_checkpoint(stopped.run_dir / "last.pt")["progress"]["step"] == 3
    resumed = run_recipe(load_run_recipe(stopped.run_dir), resume=stopped.run_dir, allow_changed=["optim.lr"])
    assert resumed.status == "finished"
    assert (stopped.run_dir / "indices.json").read_bytes() == indices_before


@pytest.mark.slow
def test_ctrl_c_during_the_final_evaluation_stops_a_complete_run_that_resume_evaluates(tiny_recipe, capsys,
                                                                                       monkeypatch):
    import cifarlab.runner.run as run_module
    from cifarlab.runs.folder import load_run_recipe
    from cifarlab.training.callbacks import Callback

    statuses = []

    class Watch(Callback):
        def on_end(self, trainer, status):
            statuses.append(status)

    evaluate = run_module.final_evaluation

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "final_evaluation", interrupted)
    recipe = tiny_recipe(train={"epochs": 1})
    with pytest.raises(KeyboardInterrupt):
        run_recipe(recipe, callbacks=[Watch()])
    run_dir = Path(recipe.out_dir) / recipe.name
    assert statuses == ["stopped"]  # not "failed": the training finished and is saved
    assert "the final evaluation was interrupted. Evaluate and report it with: cifarlab train --resume" in (
        capsys.readouterr().err)
    assert (run_dir / "last.pt").is_file() and not (run_dir / "report.md").exists()
    monkeypatch.setattr(run_module, "final_evaluation", evaluate)
    resumed = run_recipe(load_run_recipe(run_dir), resume=run_dir)
    assert resumed.status == "finished" and (run_dir / "eval_val.json").is_file() and (run_dir / "report.md").is_file()
    assert load_checkpoint(run_dir / "last.pt")["progress"]["step"] == 6  # nothing trained again


def test_ctrl_c_while_lookahead_ends_the_run_stops_it_complete(tiny_recipe, monkeypatch):
    import signal

    from cifarlab.runs.folder import load_run_recipe

    finish = loop.Trainer._finish_lookahead

    def pressed_during(trainer):
        signal.raise_signal(signal.SIGINT)  # Ctrl-C during the last validation that lookahead's end runs
        finish(trainer)

    monkeypatch.setattr(loop.Trainer, "_finish_lookahead", pressed_during)
    stopped = run_recipe(tiny_recipe(train={"epochs": 1, "lookahead": True}))
    assert stopped.status == "stopped" and stopped.exit_code == 130  # not a KeyboardInterrupt traceback
    saved = load_checkpoint(stopped.run_dir / "last.pt")["progress"]
    assert saved["step"] == 6 and saved["finished"]
    monkeypatch.setattr(loop.Trainer, "_finish_lookahead", finish)
    resumed = run_recipe(load_run_recipe(stopped.run_dir), resume=stopped.run_dir)
    assert resumed.status == "finished" and (stopped.run_dir / "report.md").is_file()


@pytest.mark.slow
def test_resume_of_a_folder_killed_before_its_first_checkpoint_starts_it_from_step_0(tiny_recipe, capsys):
    from cifarlab.runs.folder import load_run_recipe

    stopped = run_recipe(tiny_recipe(train={"epochs": 1}), stop_after=2)
    (stopped.run_dir / "last.pt").unlink()  # as if killed before the first checkpoint was written
    capsys.readouterr()
    resumed = run_recipe(load_run_recipe(stopped.run_dir), resume=stopped.run_dir)
    assert resumed.status == "finished"
    assert "has no last.pt yet (stopped before its first checkpoint): training it from step 0" in capsys.readouterr().err
    assert load_checkpoint(stopped.run_dir / "last.pt")["progress"]["step"] == 6

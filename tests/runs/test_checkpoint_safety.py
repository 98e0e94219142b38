"""Checkpoints load with weights_only=True: random-number state survives, code in a file never runs."""

from __future__ import annotations

import errno
import random

import numpy as np
import pytest
import torch
import yaml

from cifarlab.cli import main
from cifarlab.errors import CifarlabError
from cifarlab.runs import checkpoint
from cifarlab.runs.checkpoint import FORMAT, load_checkpoint, rng_state, save_checkpoint, set_rng_state


class Payload:
    """Unpickling this opens (and so creates) `marker`: the stand-in for any code a file may run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def draws() -> tuple:
    return (torch.rand(3).tolist(), np.random.rand(3).tolist(), np.random.randn(), random.random(), random.gauss(0, 1))


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    random.gauss(0, 1)  # leaves a cached Gaussian in Python's state
    np.random.randn()  # and one in numpy's (has_gauss=1)
    save_checkpoint(tmp_path / "a.pt", rng=rng_state())
    expected = draws()
    draws()  # move every generator on
    set_rng_state(load_checkpoint(tmp_path / "a.pt")["rng"])
    assert draws() == expected
    assert torch.serialization.get_unsafe_globals_in_checkpoint(tmp_path / "a.pt") == []


def test_content_that_weights_only_cannot_read_is_refused_when_saving(tmp_path):
    with pytest.raises(TypeError, match="numpy"):
        save_checkpoint(tmp_path / "last.pt", mean=np.zeros(3))
    assert list(tmp_path.iterdir()) == []


def malicious_checkpoint(path, marker, zip_format: bool = True) -> None:
    """A file shaped like a cifarlab checkpoint whose unpickling would run code."""
    torch.save({"format": FORMAT, "model": {"w": torch.zeros(2)}, "progress": Payload(marker)}, path,
               _use_new_zipfile_serialization=zip_format)


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_a_checkpoint_that_would_run_code_is_refused_and_nothing_runs(tmp_path, zip_format):
    marker = tmp_path / "marker"
    malicious_checkpoint(tmp_path / "evil.pt", marker, zip_format)
    with pytest.raises(CifarlabError, match=r"refusing to load .*evil\.pt.*open.*Nothing in it was executed"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()
    torch.load(tmp_path / "evil.pt", weights_only=False)  # the payload is real: a trusting load runs it
    assert marker.exists()


def test_cifarlab_eval_refuses_a_code_running_checkpoint_with_one_message(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "recipe.yaml").write_text(yaml.safe_dump({"name": "run", "model": {"name": "lenet"},
                                                         "train": {"device": "cpu"}}))
    marker = tmp_path / "marker"
    malicious_checkpoint(run_dir / "best.pt", marker)
    assert main(["eval", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cifarlab: error: refusing to load") and "Traceback" not in err
    assert not marker.exists()


def old_checkpoint(path) -> dict:
    """A cifarlab-checkpoint/1 file written the way cifarlab used to: RNG state as numpy and Python objects."""
    random.gauss(0, 1)
    content = {
        "format": "cifarlab-checkpoint/1", "model": {"w": torch.arange(4.0)},
        "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
        "progress": {"step": 7, "best_val_top1": 0.5, "best_step": 5, "finished": False},
        "classes": ["cat", "dog"], "mean": (0.5, 0.4, 0.3), "std": (0.2, 0.2, 0.2),
    }
    torch.save(content, path)
    return content


def test_old_checkpoint_is_refused_with_the_command_that_converts_it(tmp_path):
    old_checkpoint(tmp_path / "last.pt")
    with pytest.raises(CifarlabError, match=r"older cifarlab .*cifarlab convert-checkpoint .*last\.pt"):
        load_checkpoint(tmp_path / "last.pt")


def test_convert_checkpoint_rewrites_an_old_file_that_then_resumes_the_same_random_numbers(tmp_path, capsys):
    path = tmp_path / "last.pt"
    old = old_checkpoint(path)
    set_rng_state_old = old["rng"]
    torch.set_rng_state(set_rng_state_old["torch"])
    np.random.set_state(set_rng_state_old["numpy"])
    random.setstate(set_rng_state_old["python"])
    expected = draws()
    assert main(["convert-checkpoint", str(path)]) == 0
    assert "cifarlab-checkpoint/2" in capsys.readouterr().out
    converted = load_checkpoint(path)
    assert converted["format"] == FORMAT and converted["progress"]["step"] == 7
    assert converted["classes"] == ["cat", "dog"] and torch.equal(converted["model"]["w"], torch.arange(4.0))
    draws()
    set_rng_state(converted["rng"])
    assert draws() == expected
    assert main(["convert-checkpoint", str(path)]) == 2  # already current: one message, nothing rewritten
    assert "already in the current format" in capsys.readouterr().err


def test_convert_checkpoint_refuses_a_code_running_file_unless_trusted(tmp_path, capsys):
    marker = tmp_path / "marker"
    torch.save({"format": "cifarlab-checkpoint/1", "rng": Payload(marker)}, tmp_path / "evil.pt")
    assert main(["convert-checkpoint", str(tmp_path / "evil.pt")]) == 2
    assert "refusing to convert" in capsys.readouterr().err and not marker.exists()
    # --trust is the user's word that they made the file: only then is it unpickled in full.
    assert main(["convert-checkpoint", str(tmp_path / "evil.pt"), "--trust"]) == 2  # not cifarlab's state
    assert marker.exists()


def test_full_disk_while_saving_is_one_message_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    save_checkpoint(tmp_path / "last.pt", step=1)

    class FullDisk:
        """A file on a disk with 1 kB left: writes beyond it fail as the OS fails them."""

        def __init__(self, file):
            self.file, self.written = file, 0

        def write(self, data):
            self.written += len(data)
            if self.written > 1024:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.file.write(data)

        def __getattr__(self, name):
            return getattr(self.file, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

    monkeypatch.setattr(checkpoint, "open", lambda path, mode: FullDisk(open(path, mode)), raising=False)
    with pytest.raises(CifarlabError, match=r"cannot write .*last\.pt .*disk is full"):
        save_checkpoint(tmp_path / "last.pt", step=2, model={"w": torch.zeros(10_000)})
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temporary left


def test_any_file_that_is_not_a_checkpoint_is_one_message(tmp_path):
    """Text and random bytes (not a zip, so read as a legacy pickle) fail in many ways inside the unpickler."""
    rng = np.random.default_rng(0)
    contents = [b"hello\n", b"", b"name: quick\n"]
    contents += [bytes([0x80, 2] * (i % 2)) + rng.integers(0, 256, int(rng.integers(1, 3000)), dtype=np.uint8).tobytes()
                 for i in range(300)]
    for content in contents:
        (tmp_path / "model.pt").write_bytes(content)
        with pytest.raises(CifarlabError, match="model.pt"):
            load_checkpoint(tmp_path / "model.pt")


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_damaged_checkpoint_is_one_message(tmp_path, damage):
    save_checkpoint(tmp_path / "last.pt", model={"w": torch.zeros(100)})
    raw = (tmp_path / "last.pt").read_bytes()
    (tmp_path / "last.pt").write_bytes(raw[: len(raw) // 2] if damage == "truncate" else b"\x80\x02garbage" + raw)
    with pytest.raises(CifarlabError, match="corrupt or truncated"):
        load_checkpoint(tmp_path / "last.pt")


def test_npz_weights_holding_a_pickled_object_are_refused_and_nothing_runs(tmp_path):
    from cifarlab.models.bit_weights import read_npz

    marker = tmp_path / "marker"
    payload = np.empty(1, dtype=object)
    payload[0] = Payload(marker)
    np.savez(tmp_path / "weights.npz", **{"resnet/root_block/standardized_conv2d/kernel": payload})
    with pytest.raises(CifarlabError, match=r"weights\.npz is not a readable \.npz checkpoint .*allow_pickle=False"):
        read_npz(tmp_path / "weights.npz")
    assert not marker.exists()


@pytest.mark.slow
def test_a_checkpoint_copied_out_of_its_run_is_scored_as_its_run_scored_it(tiny_recipe, tmp_path, capsys):
    import json
    import shutil

    from cifarlab.runner.run import run_recipe

    # airbench94 with widths [8, 16, 16]: the default build would not fit these weights.
    run_dir = run_recipe(tiny_recipe(train={"epochs": 1})).run_dir
    copied = tmp_path / "downloads" / "model.pt"
    copied.parent.mkdir()
    shutil.copy(run_dir / "best.pt", copied)
    # No --model, no options: the file's recipe says them; its validation images are known too.
    assert main(["eval", str(copied), "--split", "val"]) == 0
    scores = json.loads((copied.parent / "model-eval" / "eval_val.json").read_text())
    assert main(["eval", str(run_dir), "--split", "val"]) == 0
    in_run = json.loads((run_dir / "eval_val.json").read_text())
    assert scores["num_images"] == in_run["num_images"] == 100
    assert scores["top1"] == in_run["top1"] and scores["loss"] == pytest.approx(in_run["loss"], rel=1e-6)


@pytest.mark.parametrize("content", [b'{"kind": "epoch"}\n', b"name: quick\n", b"\x89PNG\r\n\x1a\n"])
def test_a_file_that_is_no_checkpoint_at_all_is_named_so(tmp_path, content):
    # A metrics file, a recipe or an image passed as the checkpoint: not "corrupt", and no torch pickling jargon.
    (tmp_path / "last.pt").write_bytes(content)
    with pytest.raises(CifarlabError, match="is not a checkpoint") as raised:
        load_checkpoint(tmp_path / "last.pt")
    assert "weights_only" not in str(raised.value) and "corrupt" not in str(raised.value)


def test_an_empty_checkpoint_is_truncated_not_foreign(tmp_path):
    (tmp_path / "last.pt").write_bytes(b"")
    with pytest.raises(CifarlabError, match="corrupt or truncated"):
        load_checkpoint(tmp_path / "last.pt")

"""kill -9 at random steps, several times in one folder, then resume: the run ends bitwise equal to an uninterrupted one.

Each test runs the real `cifarlab` command in child processes (one thread each, so every process
computes in the same order), kills them with SIGKILL (once with SIGTERM) when their metrics.jsonl
reaches seeded random steps, and compares checkpoints (weights, optimiser, schedule, RNG, metrics window) and every
metrics.jsonl and results.csv value but timings with an uninterrupted run of the same command.
"""

from __future__ import annotations

import random
import signal

import pytest
import torch
import yaml
from PIL import Image

pytestmark = pytest.mark.slow

# A small BatchNorm network with the stateful parts a resume must carry: lookahead, One-Cycle,
# alternating flips, cutout and label smoothing. 200 images at batch 32: 6 steps an epoch.
TINY = {
    "name": "tiny", "seed": 3,
    "data": {"dataset": "cifar10", "val_size": 100, "train_limit": 200},
    "augment": {"crop_padding": 2, "cutout": 4, "flip": "alternating"},
    "model": {"name": "airbench94", "options": {"widths": [8, 16, 16]}},
    "optim": {"name": "sgd", "lr": 0.05, "nesterov": True},
    "schedule": {"name": "onecycle", "peak_epoch": 1},
    "train": {"epochs": 3, "batch_size": 32, "log_every": 1, "checkpoint_every": 1, "device": "cpu",
              "label_smoothing": 0.2, "lookahead": True},
    "eval": {"test": False, "batch_size": 200},
    "log": {"sinks": ["jsonl"]},
}
STEPS_PER_EPOCH = 6


@pytest.fixture
def recipe_file(tmp_path, cifar10):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


@pytest.mark.slow
def test_training_killed_at_random_steps_resumes_to_the_same_weights_and_metrics(harness, recipe_file, tmp_path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    start = harness.train_command(str(recipe_file), [], reference)
    assert harness.run_until(start(), reference, None, tmp_path / "reference.log") == 0
    total = harness.progress(reference)
    assert total == 3 * STEPS_PER_EPOCH

    rng = random.Random(10)
    command = harness.train_command(str(recipe_file), [], killed)
    # First kill well before the first checkpoint (end of epoch 1): the folder has a recipe but no last.pt,
    # and --resume must start it again from step 0.
    assert harness.run_until(command(), killed, rng.randint(1, 3), tmp_path / "killed.log") is None
    assert (killed / "run" / "recipe.yaml").is_file() and not (killed / "run" / "last.pt").exists()
    # SIGTERM inside a later epoch: last.pt is written mid-epoch, with the epoch's running loss and accuracy.
    stop, *points = sorted(rng.sample(range(STEPS_PER_EPOCH + 1, total), 3))
    if stop % STEPS_PER_EPOCH == 0:
        stop -= 1  # not at an epoch's end, where last.pt is written anyway
    assert harness.run_until(command(), killed, stop, tmp_path / "killed.log", signum=signal.SIGTERM) == 143
    # Then kill -9 twice after a checkpoint, and let it finish.
    assert harness.train_with_kills(command, killed, points, tmp_path / "killed.log") == 0

    log = (tmp_path / "killed.log").read_text()
    assert log.count("--resume") >= 3, log  # it really was stopped and resumed more than once
    assert harness.differences(reference / "run", killed / "run") == []
    _check_differences_can_fail(harness, reference / "run", killed / "run")


def _check_differences_can_fail(harness, reference, resumed):
    """The comparison the kill tests rely on reports one changed loss or weight bit, and ignores timings."""
    from cifarlab.runs.checkpoint import load_checkpoint, save_checkpoint

    lines = (resumed / "metrics.jsonl").read_text().splitlines()
    timed = [line.replace('"images_per_s": ', '"images_per_s": 1') for line in lines]
    (resumed / "metrics.jsonl").write_text("\n".join(timed) + "\n")
    assert harness.differences(reference, resumed) == []  # timings differ between any two runs
    (resumed / "metrics.jsonl").write_text("\n".join(timed[:-1] + [timed[-1].replace('"loss": ', '"loss": 1')]) + "\n")
    assert any("metrics.jsonl" in d and "loss" in d for d in harness.differences(reference, resumed))

    state = load_checkpoint(resumed / "last.pt")
    state.pop("format")
    name, weight = next(iter(state["model"].items()))
    flat = weight.flatten().clone()
    flat[0] = torch.nextafter(flat[0], torch.tensor(float("inf")))  # one bit of one weight
    state["model"][name] = flat.reshape(weight.shape)
    save_checkpoint(resumed / "last.pt", **state)
    assert any(d.startswith(f"last.pt.model.{name}") for d in harness.differences(reference, resumed))


@pytest.mark.slow
def test_sweep_killed_at_random_steps_resumes_every_run_exactly(harness, recipe_file, tmp_path):
    def command(out):
        return lambda: harness.cifarlab("sweep", str(recipe_file), "--grid", "seed=0,1", "--out", str(out))

    reference, killed = tmp_path / "reference", tmp_path / "killed"
    assert harness.run_until(command(reference)(), reference, None, tmp_path / "reference.log") == 0
    total = harness.progress(reference)
    assert total == 2 * 3 * STEPS_PER_EPOCH

    # One kill before the first run's first checkpoint (its folder is started again), one inside the second run.
    rng = random.Random(11)
    points = [rng.randint(1, STEPS_PER_EPOCH - 1), rng.randint(total // 2 + 1, total - 1)]
    assert harness.train_with_kills(command(killed), killed, points, tmp_path / "killed.log") == 0
    assert (tmp_path / "killed.log").read_text().count("$ ") == len(points) + 1
    assert sorted(p.name for p in (killed / "runs").iterdir()) == ["seed0", "seed1"]
    assert harness.differences(reference, killed) == []


def _image_folder(root, dataset, per_class):
    """Real CIFAR-10 images written as an image-folder dataset, `per_class` per class and split."""
    for split, images, labels in (("train", dataset.train_images, dataset.train_labels),
                                  ("test", dataset.test_images, dataset.test_labels)):
        for index, name in enumerate(dataset.classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in (labels == index).nonzero().flatten()[:per_class].tolist():
                Image.fromarray(images[i].permute(1, 2, 0).numpy()).save(folder / f"{i}.png")


@pytest.mark.slow
def test_fewshot_sweep_killed_at_random_steps_resumes_every_run_exactly(harness, tmp_path, cifar10_small, monkeypatch):
    monkeypatch.setenv("CIFARLAB_CACHE", str(tmp_path / "cache"))  # the children see it too
    _image_folder(tmp_path / "images", cifar10_small, per_class=4)
    recipe = tmp_path / "fewshot.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "tiny_fewshot", "data": {"dataset": f"folder:{tmp_path / 'images'}"},
        "model": {"name": "lenet"},
        "train": {"batch_size": 8, "device": "cpu", "log_every": 1, "checkpoint_every": 1},
        "log": {"sinks": ["jsonl"]},
        "fewshot": {"weights": ["scratch"], "shots": [2], "seeds": 2, "precrop": 32, "crop": 32,
                    "boundaries": [2, 4, 6, 8, 10]},
    }))

    def command(out):
        return lambda: harness.cifarlab("fewshot", str(recipe), "--out", str(out))

    reference, killed = tmp_path / "reference", tmp_path / "killed"
    assert harness.run_until(command(reference)(), reference, None, tmp_path / "reference.log") == 0
    total = harness.progress(reference)
    assert total == 2 * 10

    points = harness.draw_kill_points(random.Random(12), total, kills=2)
    assert harness.train_with_kills(command(killed), killed, points, tmp_path / "killed.log") == 0
    assert (tmp_path / "killed.log").read_text().count("$ ") == len(points) + 1
    assert harness.differences(reference, killed) == []

"""The BiT few-shot protocol as the seeds run it: lr 0.003 at any batch, the notebook's step line, batches
drawn with replacement, the R50x3 recipe of seeds/000, and summaries with mean as well as median."""

import contextlib
import csv
import io
import json
import re
import statistics

import pytest
import torch

import cifarlab.transfer.fewshot as fewshot
from cifarlab.config import load_recipe
from cifarlab.data.pipeline import BatchPipeline
from cifarlab.transfer.figure6 import figure6
from tests.experiments.conftest import _write_folder, sweep_recipe

pytestmark = pytest.mark.slow  # its fixtures train several real runs

# The seed's form: [Step 499] loss=1.83e-06 train accu=100.00% test accu=84.44% (lr=3e-06)
STEP_LINE = re.compile(r"^\[Step (\d+)\] loss=(\d\.\d\de[+-]\d\d) train accu=(\d+\.\d\d)% "
                       r"test accu=(\d+\.\d\d)% \(lr=(\S+)\)$")


@pytest.fixture(scope="module")
def batch32_sweep(tmp_path_factory, cifar10_small):
    """Three 1-shot runs from scratch at train.batch_size=32 (6 HyperRule steps), the test scored every 2 steps:
    (sweep folder, what it printed)."""
    root = tmp_path_factory.mktemp("fewshot_protocol")
    images = root / "images"
    _write_folder(images, cifar10_small.train_images, cifar10_small.train_labels, cifar10_small.classes, 4)
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setenv("CIFARLAB_CACHE", str(root / "cache"))
        recipe = sweep_recipe(f"folder:{images}", ["scratch"], train={"batch_size": 32, "log_every": 1},
                              shots=[1], seeds=3, boundaries=[1, 2, 3, 4, 6], eval_every=2)
        out = fewshot.run_sweep(recipe, root / "sweep")
    return out, printed.getvalue()


def _run_dirs(out):
    return [out / "runs" / f"scratch_1shot_seed{seed}" for seed in range(3)]


@pytest.mark.slow
def test_a_fewshot_run_at_batch_32_trains_at_lr_0_003_after_warmup(batch32_sweep):
    out, _ = batch32_sweep
    for run_dir in _run_dirs(out):
        steps = {r["step"]: r["lr"] for r in map(json.loads, open(run_dir / "metrics.jsonl")) if r["kind"] == "step"}
        # A step record carries the lr of the step it closes: step 1 is the warm-up's 0, steps 2 and 3 the peak.
        assert steps[1] == 0.0
        assert steps[2] == pytest.approx(0.003) and steps[3] == pytest.approx(0.003)


def test_eval_every_prints_the_notebooks_step_line_and_selects_nothing(batch32_sweep):
    out, printed = batch32_sweep
    lines = [match for match in map(STEP_LINE.match, printed.splitlines()) if match]
    assert [int(m.group(1)) for m in lines] == [1, 3, 5] * 3  # after steps 2, 4 and 6, counted from 0
    assert all(0 <= float(m.group(3)) <= 100 and 0 <= float(m.group(4)) <= 100 for m in lines)
    assert lines[2].group(5) == "3e-06"  # the last step's lr: 0.003 after three divisions by 10, as the seed's log
    for run_dir, last in zip(_run_dirs(out), lines[2::3]):
        # The last line scores the final weights: the run's own test evaluation gives the same number.
        top1 = json.loads((run_dir / "eval_test.json").read_text())["top1"]
        assert last.group(4) == f"{100 * top1:.2f}"
        assert "eval_every: 0" in (run_dir / "recipe.yaml").read_text()  # display only: not part of the run


def test_the_summary_gives_mean_sd_median_min_max_and_the_plot_marks_mean_and_median(batch32_sweep):
    out, _ = batch32_sweep
    top1 = [float(r["top1"]) for r in csv.DictReader(open(out / "results.csv"))]
    (entry,) = csv.DictReader(open(out / "summary.csv"))
    assert list(entry) == fewshot.SUMMARY_FIELDS and entry["runs"] == "3"
    assert float(entry["mean"]) == pytest.approx(statistics.mean(top1), abs=0.006)
    assert float(entry["sd"]) == pytest.approx(statistics.stdev(top1), abs=0.006)
    assert float(entry["median"]) == statistics.median(top1)
    assert (float(entry["min"]), float(entry["max"])) == (min(top1), max(top1))
    row = f"| scratch | 1 | 3 | {float(entry['mean']):.2f} | {float(entry['sd']):.2f} | {statistics.median(top1):.2f} |"
    assert row in (out / "summary.md").read_text()

    rows = list(csv.DictReader(open(out / "results.csv")))
    (axes,) = figure6(fewshot.summarise(rows), rows).axes
    (mean_line,) = [line for line in axes.get_lines() if line.get_label() == "cifarlab mean"]
    assert list(mean_line.get_ydata()) == [float(entry["mean"])]
    (medians,) = [c for c in axes.collections if c.get_label() == "cifarlab median"]
    assert medians.get_offsets()[0][1] == pytest.approx(statistics.median(top1))


def _images_numbered(n):
    """n distinct uint8 images: image i is filled with the value i."""
    return torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 3, 4, 4).contiguous()


def _distinct_in_batches(pipeline, epochs):
    return [len(torch.unique(batch.inputs[:, 0, 0, 0])) for epoch in range(epochs) for batch in pipeline.epoch(epoch)]


def test_with_replacement_draws_every_batch_with_replacement():
    common = dict(labels=torch.zeros(50, dtype=torch.long), batch_size=32, num_classes=10, mean=(0, 0, 0), std=(1, 1, 1))
    shuffled = BatchPipeline(_images_numbered(50), **common)
    assert len(shuffled) == 1 and set(_distinct_in_batches(shuffled, 5)) == {32}  # a permutation's first 32
    drawn = BatchPipeline(_images_numbered(50), with_replacement=True, **common)
    # 32 draws from 50 with replacement repeat an image with probability 1 - 50!/(18! 50^32) > 0.9999.
    assert len(drawn) == 1 and all(distinct < 32 for distinct in _distinct_in_batches(drawn, 5))


def test_the_bit_p_recipe_is_the_notebooks_protocol():
    recipe = load_recipe("bit_fewshot_r50x3")
    fs = recipe.fewshot
    assert (fs.weights, fs.shots, fs.seeds, fs.with_replacement, fs.lr_scaling) == (["BiT-M-R50x3"], [5], 5, True, "none")
    assert fs.eval_every > 0 and 500 % fs.eval_every == 0  # a line at the last step, [Step 499]
    run = fewshot.run_recipe_for(recipe, "BiT-M-R50x3", shots=5, seed=0, num_classes=10, image_size=32)
    assert (run.model.name, run.model.weights, run.train.batch_size) == ("bit_r50x3", "BiT-M-R50x3", 32)
    assert run.train.steps == 500 and run.schedule.boundaries == [100, 200, 300, 400, 500]
    assert run.optim.lr == 0.003 and (run.augment.resize, run.augment.crop) == (160, 128)
    assert run.fewshot.with_replacement and run.data.examples_per_class == 5


@pytest.mark.parametrize("overrides, lr", [([], 0.003), (["fewshot.lr_scaling=linear"], 0.003 * 32 / 512)])
def test_the_offline_bit_p_recipe_runs_the_notebooks_protocol_on_the_cpu_upstream_at_either_rate(overrides, lr):
    recipe = load_recipe("bit_p_offline_cpu", overrides)
    reference = load_recipe("bit_fewshot_r50x3")
    for key in ("shots", "seeds", "with_replacement"):
        assert getattr(recipe.fewshot, key) == getattr(reference.fewshot, key), key
    assert recipe.train.batch_size == reference.train.batch_size == 32
    weights = recipe.fewshot.weights[0]
    assert weights == "runs/bit_upstream_cifar100_cpu/weights.npz"
    # The same network from scratch (the upstream's weights.npz is made by `cifarlab train bit_upstream_cifar100_cpu`).
    run = fewshot.run_recipe_for(recipe, "scratch", shots=5, seed=0, num_classes=10, image_size=32)
    assert run.train.steps == 500 and run.optim.lr == pytest.approx(lr)
    assert (run.augment.resize, run.augment.crop) == (72, 64)  # the upstream model's own 64x64 scale

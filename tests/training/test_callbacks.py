import json

import pytest
import torch

from cifarlab.runner.run import run_recipe
from cifarlab.runs.checkpoint import load_checkpoint
from cifarlab.training.callbacks import Callback


class GradientNorms(Callback):
    """What an analysis does: read every step's gradients without touching the loop."""

    def __init__(self):
        self.norms, self.epochs, self.evals, self.ended = [], [], [], None

    def on_step(self, trainer, step):
        params = [p for p in trainer.model.parameters() if p.grad is not None]
        self.norms.append((step.step, float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])))))
        assert step.logits.shape[0] == step.labels.shape[0] == step.inputs.shape[0]

    def on_epoch(self, trainer, record):
        self.epochs.append(record["epoch"])

    def on_eval(self, trainer, split, result):
        self.evals.append((split, result["top1"]))

    def on_end(self, trainer, status):
        self.ended = status


class StopAfter(Callback):
    def __init__(self, step: int):
        self.step = step

    def on_step(self, trainer, step):
        if step.step >= self.step:
            trainer.stop_requested = True


@pytest.mark.slow
def test_a_callback_sees_every_step_with_its_gradients_epochs_and_final_evaluation(tiny_recipe):
    watcher = GradientNorms()
    result = run_recipe(tiny_recipe(train={"epochs": 2}, eval={"test": True}), callbacks=[watcher])
    assert [step for step, _ in watcher.norms] == list(range(1, 13))  # 6 steps per epoch
    assert all(norm > 0 for _, norm in watcher.norms)
    assert watcher.epochs == [1, 2]
    assert [split for split, _ in watcher.evals] == ["val", "test"]
    assert dict(watcher.evals)["test"] == result.test["top1"]
    assert watcher.ended == "finished"


@pytest.mark.slow
def test_a_callback_can_stop_a_run_which_then_resumes_from_its_last_checkpoint(tiny_recipe):
    recipe = tiny_recipe(train={"epochs": 2})
    stopped = run_recipe(recipe, callbacks=[StopAfter(4)])
    assert stopped.status == "stopped"
    assert load_checkpoint(stopped.run_dir / "last.pt")["progress"]["step"] == 4
    resumed = run_recipe(recipe, resume=stopped.run_dir)
    assert resumed.status == "finished"
    records = [json.loads(line) for line in (resumed.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["kind"] == "epoch"] == [1, 2]

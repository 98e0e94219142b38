import os
import subprocess
import sys

import pytest
import torch
import yaml

from cifarlab.config import recipe_from_dict
from cifarlab.runner.run import run_recipe
from cifarlab.runs.checkpoint import load_checkpoint


@pytest.mark.slow
def test_two_cpu_processes_with_gloo_match_one_process(tmp_path, cifar10):
    # LeNet has no BatchNorm, so two ranks each taking half of every batch, with gradients
    # averaged by DistributedDataParallel, must reach the single-process weights.
    data = {
        "name": "ddp", "seed": 5, "out_dir": str(tmp_path / "runs"),
        "data": {"dataset": "cifar10", "val_size": 100, "train_limit": 200},
        "augment": {"crop_padding": 2, "cutout": 4},
        "model": {"name": "lenet"},
        "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
        "train": {"epochs": 2, "batch_size": 32, "device": "cpu", "log_every": 2},
        "eval": {"test": False},
    }
    recipe_path = tmp_path / "ddp.yaml"
    recipe_path.write_text(yaml.safe_dump(data))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "cifarlab", "train", str(recipe_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp_dir = tmp_path / "runs" / "ddp"
    assert (ddp_dir / "last.pt").is_file() and (ddp_dir / "recipe.yaml").is_file()
    assert len(list((ddp_dir / "tensorboard").iterdir())) == 1  # rank 0 alone writes

    single = run_recipe(recipe_from_dict({**data, "name": "single"}, source="test"))
    a = load_checkpoint(ddp_dir / "last.pt")["model"]
    b = load_checkpoint(single.run_dir / "last.pt")["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)

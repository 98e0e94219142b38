"""Recipe values that types and bounds cannot catch are refused when the recipe loads, naming the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from cifarlab.cli import main
from cifarlab.config import load_recipe, recipe_from_dict
from cifarlab.errors import CifarlabError

REFUSED = [
    (["optim.lr=-1"], r"optim\.lr must be > 0 \(or `find`.*got -1; set e\.g\. optim\.lr=0\.1 .*set on the command line"),
    (["optim.lr=0"], r"optim\.lr must be > 0"),
    (["fewshot.base_lr=0"], r"fewshot\.base_lr must be > 0"),
    (["train.epochs=0"], r"train\.epochs=0 trains nothing; give train\.epochs > 0 .* or train\.steps=N"),
    (["train.device=banana"], r"train\.device='banana' is not a device cifarlab trains on; use auto, cpu"),
    (["train.device=meta"], r"train\.device='meta' is not a device"),
    (["train.batch_size=30", "train.accumulate=4"], r"does not split into train\.accumulate=4 .*train\.batch_size=28"),
    (["train.grad_clip=0"], r"train\.grad_clip=0 would zero every gradient"),
    (["optim.betas=[0.9]"], r"optim\.betas must be two numbers in \[0, 1\)"),
    (["optim.betas=[0.9,1.0]"], r"optim\.betas must be two numbers"),
    (["schedule.milestones=[150,100]"], r"schedule\.milestones must be increasing"),
    (["schedule.boundaries=[100]"], r"schedule\.boundaries needs at least"),
    (["fewshot.shots=[0,5]"], r"fewshot\.shots must be examples per class >= 1"),
    (["augment.resize=64", "augment.crop=96"], r"augment\.crop=96 is larger than the resized image"),
    (["augment.progressive_size=24"], r"progressive resizing needs both augment\.progressive_size and augment\.progressive_epochs"),
    (["augment.progressive_epochs=2"], r"progressive resizing needs both"),
    (["augment.progressive_size=24", "augment.progressive_epochs=3", "train.epochs=3"],
     r"augment\.progressive_epochs=3 leaves no epoch at full size \(train\.epochs=3\)"),
    (["model.whiten_bias_epochs=3"], r"model\.whiten_bias_epochs freezes the bias of airbench's whitening layer, "
                                      r"which model\.init=default does not make; add model\.init=airbench"),
    (["name=a/b"], r"name='a/b' cannot be a run folder name"),
    (["name=.."], r"cannot be a run folder name"),
    (["seed=-1"], r"seed must be between 0 and 4294967295, got -1"),
    (["data.subset_seed=4294967296"], r"data\.subset_seed must be between 0"),
    (["train.precision=fp16", "train.device=cpu"],
     r"train\.precision=fp16 needs a CUDA GPU .* trains on cpu; use train\.precision=bf16 there .* or train\.precision=fp32"),
    (["augment.flip=none", "augment.flip_p=0.3"], r"augment\.flip_p=0\.3 is the probability of a random flip, but "
                                                   r"augment\.flip=none; add augment\.flip=random"),
    (["optim.lr=1e-4", "schedule.warmup_start_lr=1e-3"],
     r"schedule\.warmup_start_lr=0\.001 is above optim\.lr=0\.0001.*give a smaller start"),
]


@pytest.fixture
def empty(tmp_path) -> Path:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    return path


@pytest.mark.parametrize("overrides, message", REFUSED)
def test_bad_values_are_refused_with_the_fix(empty, overrides, message):
    with pytest.raises(CifarlabError, match=message):
        load_recipe(empty, overrides)


def test_values_at_the_edge_are_accepted(empty):
    assert load_recipe(empty, ["train.epochs=0", "train.steps=5"]).train.steps == 5
    recipe = load_recipe(empty, ["optim.lr=find", "train.device=cpu", "train.batch_size=32", "train.accumulate=4",
                                 "seed=4294967295", "augment.resize=64", "augment.crop=64", "train.epochs=0.5"])
    assert recipe.train.epochs == 0.5 and recipe.optim.lr == "find"


def test_a_device_this_machine_lacks_is_refused_unless_reading_a_finished_run(empty):
    if not torch.cuda.is_available():
        missing, message = "cuda", r"train\.device=cuda but this machine has no CUDA GPU.*train\.device=cpu"
    else:
        missing, message = "cuda:99", r"train\.device=cuda:99 but this machine has \d+ GPU"
    with pytest.raises(CifarlabError, match=message):
        load_recipe(empty, [f"train.device={missing}"])
    assert load_recipe(empty, [f"train.device={missing}"], check_machine=False).train.device == missing
    if not torch.backends.mps.is_available():
        with pytest.raises(CifarlabError, match=r"MPS backend is not available here"):
            recipe_from_dict({"train": {"device": "mps"}})


def test_a_file_value_names_the_file_it_was_set_in(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"optim": {"lr": -0.5}}))
    with pytest.raises(CifarlabError, match=rf"got -0\.5.*\(set in {path}\)"):
        load_recipe(path)


@pytest.mark.parametrize("override", ["optim.lr=-1", "train.device=banana", "train.epochs=0"])
def test_cifarlab_train_refuses_before_creating_anything(tmp_path, capsys, override):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"out_dir": str(tmp_path / "runs"), "model": {"name": "lenet"}}))
    assert main(["train", str(recipe), override]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cifarlab: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_fp16_on_auto_is_left_to_the_run_and_fp16_on_a_named_gpu_only_needs_the_gpu(empty):
    # `auto` is resolved when the run starts (cifarlab.training.step refuses fp16 there off a GPU), so a
    # GPU recipe in fp16 still loads on a CPU machine; a named CUDA device only has to exist.
    assert load_recipe(empty, ["train.precision=fp16"]).train.precision == "fp16"
    assert load_recipe(empty, ["train.precision=fp16", "train.device=cuda"], check_machine=False).train.device == "cuda"
    assert load_recipe(empty, ["train.precision=bf16", "train.device=cpu"]).train.precision == "bf16"

"""Score a cifarlab checkpoint file on its own, outside the run folder that wrote it.

A checkpoint names its model, classes and the normalisation it was trained with; what it may
not carry (the model's options, the data set) comes from the checkpoint's own recipe when it has
one, else from the arguments: `dataset` and `model`, plus `key=value` overrides such as
`model.options.width_multiplier=0.5` for a model built with options. It is scored as its run scored
it (that recipe's precision, memory format, TTA, geometry and CLAHE); a checkpoint without a recipe is
scored in full precision unless `train.precision=...` says otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Optional

from cifarlab.config import recipe_from_dict, recipe_to_dict
from cifarlab.config.loader import with_overrides
from cifarlab.config.recipe import Recipe
from cifarlab.data.prepare import split_images
from cifarlab.errors import CifarlabError
from cifarlab.evaluation import evaluate_split, run_settings
from cifarlab.runs.checkpoint import load_checkpoint, model_from_checkpoint
from cifarlab.training.allocator import allocator_setting

DEFAULT_DATASET = "cifar10"


def default_output_folder(checkpoint: str | os.PathLike) -> Path:
    """`path/best.pt` -> `path/best-eval`: beside the checkpoint, one folder per checkpoint file."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(f"{checkpoint.stem}-eval")


def evaluate_checkpoint_file(
    checkpoint: str | os.PathLike,
    *,
    dataset: Optional[str] = None,
    model: Optional[str] = None,
    overrides: Iterable[str] = (),
    split: str = "test",
    tta: Optional[str] = None,
    out_dir: str | os.PathLike | None = None,
) -> dict:
    """Evaluate the model in `checkpoint` on `split` of `dataset`; write eval_<split>.json and plots to `out_dir`.

    `dataset` defaults to the checkpoint's recipe's, else cifar10; `model` to the name the checkpoint
    records. The validation split needs the checkpoint's recipe (its size and seed say which images).
    """
    path = Path(checkpoint)
    state = load_checkpoint(path)
    recipe = _recipe_for(state, path, dataset, model, overrides)
    if split == "val" and not isinstance(state.get("recipe"), dict):
        raise CifarlabError(f"{path} does not record its recipe, so its validation images are unknown; "
                            "use --split test, or evaluate the run folder it came from")
    classes, images, labels = split_images(recipe.data, recipe.seed, split, f"the recipe of {path}")
    if split == "test":
        _check_classes(state, classes, recipe.data.dataset, path)
    network = model_from_checkpoint(recipe.model.name, recipe.model.options, state,
                                    f"{path} (built as {recipe.model.name!r}; pass --model or "
                                    "model.options.KEY=VALUE if it was trained as another)")
    settings = run_settings(network, recipe, state["mean"], state["std"], split=split, tta=tta)
    with allocator_setting(recipe.train.allocator):
        return evaluate_split(network, images, labels, list(state["classes"]), out_dir or default_output_folder(path),
                              settings)


def _recipe_for(state: dict, path: Path, dataset: Optional[str], model: Optional[str],
                overrides: Iterable[str]) -> Recipe:
    """The checkpoint's own recipe (or the defaults) with the dataset, model and overrides given."""
    own = state.get("recipe")
    if isinstance(own, dict):
        # The machine evaluating is not the one that trained: its recipe's device need not exist here.
        data = recipe_to_dict(recipe_from_dict(own, str(path), check_machine=False))
    else:
        # How the weights were trained is unknown: score them in full precision, as published weights
        # are usually reported; train.precision=auto (bf16 where the CPU has it) is faster.
        data = {"train": {"precision": "fp32"}}
    data.setdefault("data", {})
    data.setdefault("model", {})
    if dataset or "dataset" not in data["data"]:
        data["data"]["dataset"] = dataset or DEFAULT_DATASET
    name = model or state.get("model_name") or data["model"].get("name")
    if not name:
        raise CifarlabError(f"{path} does not record which model it holds; pass --model NAME "
                            "(`cifarlab models` lists them)")
    data["model"]["name"] = name
    data["model"]["weights"] = None  # the checkpoint holds every weight
    return recipe_from_dict(with_overrides(data, overrides), f"the checkpoint {path}", check_machine=False)


def _check_classes(state: dict, classes: list[str], dataset: str, path: Path) -> None:
    if int(state["num_classes"]) != len(classes):
        raise CifarlabError(
            f"{path} classifies {state['num_classes']} classes, {dataset} has {len(classes)}; "
            f"pass the data set it was trained on with --data (e.g. --data cifar100)"
        )

"""Export a trained run as portable weights: `export_run(run, out)` writes one `.safetensors` file."""

from __future__ import annotations

import os
from pathlib import Path

from cifarlab.config import load_recipe
from cifarlab.data.equalise import clahe_of
from cifarlab.errors import CifarlabError
from cifarlab.models.catalogue import create
from cifarlab.models.input_config import InputConfig
from cifarlab.models.portable import PortableHeader, save_portable
from cifarlab.runs.checkpoint import load_checkpoint, load_model_state, resolve_checkpoint


def export_run(run_or_checkpoint: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write the weights of a run (its best.pt, else last.pt; or a given .pt) to `out` with their description.

    The file records the model name, class count and options of the run's recipe, the class
    names, the normalisation the run trained with (mean/std, and CLAHE when its recipe equalised the
    images: a user of the file must equalise inputs the same way) and the geometry it evaluated at,
    so that `create(weights=out)` rebuilds a model that gives the run's logits.
    """

    path = resolve_checkpoint(run_or_checkpoint, prefer="best.pt")
    recipe_file = path.parent / "recipe.yaml"
    if not recipe_file.is_file():
        raise CifarlabError(
            f"{path} has no recipe.yaml beside it, so its model options are unknown; export the run folder it came from"
        )
    recipe = load_recipe(recipe_file)
    state = load_checkpoint(path)
    options = dict(recipe.model.options)
    model = create(recipe.model.name, state["num_classes"], **options)
    load_model_state(model, state["model"], str(path))
    augment = recipe.augment
    clahe = clahe_of(recipe.data)
    input_config = InputConfig(
        mean=tuple(state["mean"]),
        std=tuple(state["std"]),
        input_size=model.input_config.input_size,
        resize=augment.resize,
        crop=augment.crop,
        interpolation=model.input_config.interpolation,
        clahe_clip_limit=clahe.clip_limit if clahe is not None else None,
        clahe_grid=clahe.grid if clahe is not None else None,
    )
    header = PortableHeader(recipe.model.name, state["num_classes"], options, tuple(state["classes"]), input_config)
    return save_portable(model, out, header)

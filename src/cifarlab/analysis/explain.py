"""Explain a trained run: pick test images, compute their Grad-CAM maps, draw the gallery."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from cifarlab.analysis.activation_maps import gradcam
from cifarlab.analysis.gallery import Example, plot_gallery
from cifarlab.analysis.target_layer import target_layer_name
from cifarlab.data.prepare import split_images as run_split_images
from cifarlab.errors import CifarlabError
from cifarlab.evaluation.predict import predict
from cifarlab.evaluation.preprocessing import Preprocessing
from cifarlab.evaluation.settings import EvalSettings, run_preprocessing
from cifarlab.runs import Run, load_run

# Images predicted per pass while looking for enough correct and misclassified ones.
SCAN_BATCH = 500
MAX_IMAGES = 100  # per group: 1.75 inch rows at 120 dpi; matplotlib refuses figures over 65,536 pixels


@dataclass
class Explanation:
    """What the gallery shows: dataset indices, maps, predictions, and the layer explained."""

    path: Path
    layer: str
    correct: list[int]  # indices into the split
    misclassified: list[int]


def split_images(run: Run, split: str = "test") -> tuple[Tensor, Tensor]:
    """The uint8 images and labels of a run's `split` ("test" or "val"), as the run's recipe made them."""
    _, images, labels = run_split_images(run.recipe.data, run.recipe.seed, split, f"run {run.dir}")
    return images, labels


def pick_examples(run: Run, images: Tensor, labels: Tensor, count: int, classes: Sequence[str] | None,
                  seed: int, device: torch.device, preprocessing: Preprocessing) -> tuple[list[int], list[int], Tensor]:
    """Up to `count` correct and `count` misclassified image indices, in a seeded random order, and
    the (len(images), C) probabilities of those looked at (zeros elsewhere).

    The split is sorted by class, so images are drawn in a shuffled order; with `classes`, only
    images of those true classes are drawn. `images` are the stored ones; `preprocessing` is the run's.
    """
    names = run.classes
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    if classes:
        unknown = [name for name in classes if name not in names]
        if unknown:
            raise CifarlabError(f"unknown class names {unknown}; the run's classes are {', '.join(names)}")
        wanted = torch.tensor([names.index(name) for name in classes])
        order = order[torch.isin(labels[order], wanted)]
    settings = EvalSettings(preprocessing, device=device)
    probs = torch.zeros(len(images), len(names))
    correct: list[int] = []
    misclassified: list[int] = []
    for start in range(0, len(order), SCAN_BATCH):
        chunk = order[start : start + SCAN_BATCH]
        probs[chunk] = predict(run.model, images[chunk], settings)
        hits = probs[chunk].argmax(dim=1) == labels[chunk]
        correct += chunk[hits].tolist()[: count - len(correct)]
        misclassified += chunk[~hits].tolist()[: count - len(misclassified)]
        if len(correct) >= count and len(misclassified) >= count:
            break
    return correct, misclassified, probs


def explain_run(
    run_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    method: str = "gradcam",
    count: int = 8,
    classes: Sequence[str] | None = None,
    layer: str | None = None,
    split: str = "test",
    seed: int = 0,
    device: str | None = None,
) -> Explanation:
    """Write a Grad-CAM gallery of `count` correct and `count` misclassified images of a run's split.

    Each map explains the class the model predicted. Returns what was shown.
    """
    if not 1 <= count <= MAX_IMAGES:
        raise CifarlabError(f"--images {count}: show 1 to {MAX_IMAGES} images per group (one figure row each); "
                            f"for more, run again with another --seed or --classes")
    run = load_run(run_dir)
    place = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = run.model.to(place)
    images, labels = split_images(run, split)
    preprocessing = run_preprocessing(model, run.recipe, run.mean, run.std)
    correct, misclassified, probs = pick_examples(run, images, labels, count, classes, seed, place, preprocessing)
    chosen = correct + misclassified
    if not chosen:
        raise CifarlabError(f"no {split} images of classes {list(classes or [])} to explain; name other classes")
    # The maps explain what the model saw: with CLAHE, the equalised images (shown in the gallery too).
    shown = images[chosen] if preprocessing.clahe is None else preprocessing.clahe(images[chosen])
    if layer is None:
        layer = target_layer_name(model, preprocessing(images[chosen[:1]].to(place)))
    predicted = probs[chosen].argmax(dim=1)
    side = preprocessing.resize[0] if preprocessing.resize else None
    maps = gradcam(model, shown, method, target_layer=layer, targets=predicted, mean=run.mean, std=run.std, resize=side)
    names = run.classes
    examples = [
        Example(shown[position], maps[position], names[labels[index]], names[predicted[position]],
                float(probs[index, predicted[position]]))
        for position, index in enumerate(chosen)
    ]
    label = "Grad-CAM" if method == "gradcam" else "Grad-CAM++"
    title = f"{label} of {run.recipe.model.name} ({run.dir.name}) at layer {layer}, explaining the predicted class"
    path = plot_gallery(examples[: len(correct)], examples[len(correct) :], out, title)
    return Explanation(path=path, layer=layer, correct=correct, misclassified=misclassified)

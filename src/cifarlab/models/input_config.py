"""What a model expects of its input: normalisation, size, evaluation geometry and where its weights came from.

Every model built by `cifarlab.models.create` carries one as `model.input_config`, so nobody
outside `models` maps model or weights names to statistics or sizes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

from cifarlab.errors import CifarlabError

CIFAR_INPUT_SIZE = (3, 32, 32)
_CLAHE_FIELDS = ("clahe_clip_limit", "clahe_grid")


class TrainingGeometry(Protocol):
    """The part of a training recipe's augmentation that sets the image side (cifarlab's AugmentConfig)."""

    resize: int | None
    crop: int | None


@dataclass(frozen=True)
class InputConfig:
    """How images must be prepared for a model.

    mean, std       per-channel normalisation of [0, 1] pixels; None means "the training
                    data's own statistics" (what a CIFAR zoo model trained from scratch uses).
    input_size      (channels, height, width) of the images the network was built for.
    resize, crop    training geometry: images are resized to `resize`, then a random `crop`
                    is taken; at evaluation the model sees whole images resized to the crop
                    side (BiT HyperRule: resize 160, crop 128). None: the native size.
    interpolation   how images are resized.
    weights         what was loaded: an official name, a file, or None for random weights.
    clahe_clip_limit, clahe_grid
                    when set, the model was trained on CLAHE-equalised images (DL4DS's normalisation,
                    `cifarlab.data.equalise`: the luma equalised with this contrast limit on a grid x
                    grid tiling, before resizing and mean/std): equalise its inputs the same way.
                    None: no equalisation (and every file written before these fields).
    """

    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    input_size: tuple[int, int, int] = CIFAR_INPUT_SIZE
    resize: int | None = None
    crop: int | None = None
    interpolation: str = "bilinear"
    weights: str | None = None
    clahe_clip_limit: float | None = None
    clahe_grid: int | None = None

    def to_json(self) -> str:
        """The config as one JSON object (the form stored in exported weight files)."""
        values = asdict(self)
        # Without CLAHE the file is written as before these fields existed, so earlier cifarlab versions read it.
        for key in _CLAHE_FIELDS:
            if values[key] is None:
                del values[key]
        return json.dumps(values, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> InputConfig:
        """The config `to_json` wrote; lists come back as tuples."""
        values: dict[str, Any] = json.loads(text)
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise CifarlabError(
                f"input config has unknown fields {unknown}; the file was written by a newer cifarlab: upgrade cifarlab."
            )
        for key in ("mean", "std", "input_size"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)

    def with_weights(self, weights: str | None) -> InputConfig:
        """The same config, recording `weights` as what was loaded."""
        return replace(self, weights=weights)


def eval_geometry(input_config: InputConfig, augment: TrainingGeometry | None = None) -> dict:
    """Keyword arguments (`resize=side`, or none) that give evaluation the geometry training used.

    A recipe's own `augment.crop` / `augment.resize` win, because the weights were trained at
    that side; with `augment` None (a model on its own, such as an exported file) the model's
    config decides. Evaluation resizes whole images to the crop side: no random crop, no flip.
    Pass the result to `cifarlab.evaluation.Preprocessing(mean, std, **geometry)`, or build the validation pipeline's
    `AugmentConfig(crop_padding=0, flip="none", **geometry)` when it is not empty.
    """
    source = augment if augment is not None else input_config
    side = source.crop or source.resize
    return {"resize": side} if side else {}

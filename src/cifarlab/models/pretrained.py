"""Which registered model a set of weights is for: official BiT names and exported weight files."""

from __future__ import annotations

import os

from cifarlab.errors import CifarlabError
from cifarlab.models.bit_weights import OFFICIAL_NAMES, architecture_of
from cifarlab.models.portable import is_portable_file, read_header


def model_for_weights(weights: str | os.PathLike) -> str:
    """The registered model name `weights` loads into: `BiT-M-R101x3` -> `bit_r101x3`, an exported file -> its model.

    A BiT `.npz` file or any other name says nothing of its model and is an error.
    """
    text = str(weights)
    if text in OFFICIAL_NAMES:
        return f"bit_{architecture_of(text)}"
    if is_portable_file(text):
        return read_header(text).model
    raise CifarlabError(
        f"cannot tell which model weights {text!r} are for; give an official BiT name "
        f"({', '.join(OFFICIAL_NAMES[:2])}, ...) or a .safetensors file written by `cifarlab export`, "
        "or name the model yourself."
    )

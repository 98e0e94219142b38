"""Portable weights: one `.safetensors` file holding a model's weights and what is needed to rebuild and feed it.

Besides the tensors, the file's metadata (strings, as safetensors requires) records the
registered model name, the class count, the constructor options, the class names and the
model's input config (mean/std, CLAHE, input size, evaluation geometry). Nothing in the file is
executed when it is read, unlike a pickled checkpoint.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from cifarlab.atomic import atomic_path
from cifarlab.errors import CifarlabError
from cifarlab.models.input_config import InputConfig

FORMAT = "cifarlab-weights/1"
SUFFIX = ".safetensors"


@dataclass(frozen=True)
class PortableHeader:
    """What a portable weights file says about its model."""

    model: str
    num_classes: int
    options: dict[str, Any]
    classes: tuple[str, ...]
    input_config: InputConfig


def is_portable_file(weights: str | os.PathLike) -> bool:
    """Whether `weights` names a portable (`.safetensors`) weights file rather than an official name or `.npz`."""
    return str(weights).endswith(SUFFIX)


def save_portable(model: nn.Module, path: str | os.PathLike, header: PortableHeader) -> Path:
    """Write `model`'s weights and `header` to `path` atomically; returns the path."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != SUFFIX:
        raise CifarlabError(f"portable weights are written as {SUFFIX} files, got {path}; name the file model{SUFFIX}")
    # Clones break any storage shared between tensors, which safetensors refuses to write.
    tensors = {key: value.detach().cpu().clone().contiguous() for key, value in model.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "model": header.model,
        "num_classes": str(header.num_classes),
        # The file itself is the weights: a `weights` option would load others over them.
        "options": json.dumps({k: v for k, v in header.options.items() if k != "weights"}, sort_keys=True),
        "classes": json.dumps(list(header.classes)),
        "input_config": header.input_config.with_weights(None).to_json(),
    }
    with atomic_path(path) as tmp:
        try:
            save_file(tensors, str(tmp), metadata=metadata)
        except SafetensorError as exc:
            # safetensors writes from Rust and reports a failed write as "I/O error: ... (os error 28)": give
            # atomic_path the OSError it stands for, so a full disk or a read-only folder is explained.
            code = re.search(r"\(os error (\d+)\)", str(exc))
            if code is None:
                raise
            raise OSError(int(code.group(1)), os.strerror(int(code.group(1)))) from exc
    return path


def read_header(path: str | os.PathLike) -> PortableHeader:
    """The header of a portable weights file; a missing, corrupt or foreign file is one clear error."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CifarlabError(f"weights file {path} does not exist; write one with `cifarlab export RUN --out {path}`")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for a damaged header
        raise CifarlabError(
            f"weights file {path} is not a readable .safetensors file ({type(exc).__name__}: {str(exc)[:120]}); "
            "export the run again with `cifarlab export`"
        ) from exc
    if metadata.get("format") != FORMAT:
        raise CifarlabError(
            f"{path} holds no cifarlab model description (expected format {FORMAT}); "
            "use a file written by `cifarlab export`"
        )
    return PortableHeader(
        model=metadata["model"],
        num_classes=int(metadata["num_classes"]),
        options=json.loads(metadata["options"]),
        classes=tuple(json.loads(metadata["classes"])),
        input_config=InputConfig.from_json(metadata["input_config"]),
    )


def load_portable_weights(model: nn.Module, path: str | os.PathLike, header: PortableHeader,
                          options: dict[str, Any]) -> nn.Module:
    """Load a portable file's weights into `model` (built from its header) and give it the file's input config."""
    from safetensors.torch import load_file

    try:
        model.load_state_dict(load_file(str(path)))
    except RuntimeError as exc:
        raise CifarlabError(
            f"weights file {path} does not fit {header.model} built with options {options}: {str(exc)[:300]}; "
            "leave out the options that change the network's shape"
        ) from exc
    model.input_config = header.input_config.with_weights(str(path))
    return model

"""Official BiT checkpoints: names, download into the cache, and `.npz` load/save in the official layout.

The official layout is a flat `.npz` of float32 arrays named as in the TensorFlow BiT code
(`resnet/block1/unit01/a/standardized_conv2d/kernel`, ...), convolution kernels stored HWIO.
`save_npz` writes the same layout, so a network trained by cifarlab transfers through exactly
the path the published checkpoints take.
"""

from __future__ import annotations

import difflib
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cifarlab.atomic import atomic_path
from cifarlab.download import DownloadFailed, download_file
from cifarlab.errors import CifarlabError

URL_BASE = "https://storage.googleapis.com/bit_models"

# Approximate file sizes (MB, float32 weights; BiT-M heads have 21,843 classes, BiT-S 1,000).
# A download far from its size is a wrong file or an error page, not a checkpoint.
APPROX_MB = {
    "BiT-S-R50x1": 102, "BiT-M-R50x1": 273,
    "BiT-S-R50x3": 869, "BiT-M-R50x3": 1382,
    "BiT-S-R101x1": 178, "BiT-M-R101x1": 349,
    "BiT-S-R101x3": 1552, "BiT-M-R101x3": 2064,
    "BiT-S-R152x2": 945, "BiT-M-R152x2": 1287,
    "BiT-S-R152x4": 3746, "BiT-M-R152x4": 4429,
}
OFFICIAL_NAMES = tuple(APPROX_MB)
SIZE_TOLERANCE = 0.10

ROOT_KERNEL = "resnet/root_block/standardized_conv2d/kernel"
HEAD_KERNEL = "resnet/head/conv2d/kernel"
HEAD_BIAS = "resnet/head/conv2d/bias"


def weights_dir() -> Path:
    """Where downloaded checkpoints live: the `weights/` folder of cifarlab's cache folder."""
    # Imported late: building a model needs no data stage.
    from cifarlab.data.cache import cache_dir

    return cache_dir() / "weights"


def architecture_of(name: str) -> str:
    """The BiT size an official checkpoint name is for: `BiT-M-R101x3` -> `r101x3`."""
    return name.rsplit("-", 1)[-1].lower()


# --- finding the file -------------------------------------------------------------------------

def resolve(weights: str | os.PathLike, model: nn.Module) -> Path:
    """The `.npz` file for `weights` (official name, downloaded on first use, or a path) fitting `model`."""
    text = str(weights)
    if text in APPROX_MB:
        _check_name_fits(text, model)
        return official_file(text)
    path = Path(weights).expanduser()
    if path.is_file():
        return path
    close = difflib.get_close_matches(text, OFFICIAL_NAMES, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else f" Official names: {', '.join(OFFICIAL_NAMES)}."
    raise CifarlabError(f"weights {text!r} is neither an official BiT checkpoint name nor an existing "
                        f".npz file.{hint} Pass an official name or the path of an .npz file.")


def _check_name_fits(name: str, model: nn.Module) -> None:
    arch, have = architecture_of(name), getattr(model, "arch", None)
    if arch == have:
        return
    fitting = [n for n in OFFICIAL_NAMES if architecture_of(n) == have]
    instead = f", or weights={' / '.join(fitting)} for bit_{have}" if fitting else ""
    raise CifarlabError(f"checkpoint {name} is for model bit_{arch}, but this model is "
                        f"{'bit_' + have if have else 'a reduced BiT network'}: create 'bit_{arch}' "
                        f"to load {name}{instead}.")


def official_file(name: str) -> Path:
    """Path of official checkpoint `name` in the cache, downloading it if it is not there yet."""
    path = weights_dir() / f"{name}.npz"
    if path.is_file():
        _check_size(name, path.stat().st_size, f"the cached file {path} (delete it to download again)")
        return path
    download(name, path)
    return path


def download(name: str, path: Path) -> None:
    """Fetch official checkpoint `name` to `path` with a progress bar; written atomically, size-checked."""
    url = f"{URL_BASE}/{name}.npz"
    try:
        download_file(url, path, f"{name}.npz", expected_bytes=APPROX_MB[name] * 1_000_000,
                      verify=lambda received: _check_size(name, received.size, f"the download from {url}"))
    except DownloadFailed as exc:
        raise CifarlabError(
            f"{exc}. Run again; or, offline, download {name}.npz (about {APPROX_MB[name]} MB) on a machine with "
            f"internet and put it at {path}, or pass weights=<path of the .npz>.") from exc


def _check_size(name: str, size: int, what: str) -> None:
    expected = APPROX_MB[name] * 1_000_000
    if abs(size - expected) > SIZE_TOLERANCE * expected:
        raise CifarlabError(f"{what} has {size:,} bytes, but {name} is about {APPROX_MB[name]} MB: not that "
                            f"checkpoint. Put the official {name}.npz at {weights_dir() / (name + '.npz')}.")


# --- the official layout ----------------------------------------------------------------------

def official_params(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter of a BiT ResNet-V2, keyed by its official checkpoint name."""
    params = {ROOT_KERNEL: model.root.conv.weight}
    for block_name, block in model.body.named_children():
        for unit_name, unit in block.named_children():
            prefix = f"resnet/{block_name}/{unit_name}/"
            for letter, conv, norm in (("a", unit.conv1, unit.gn1), ("b", unit.conv2, unit.gn2),
                                       ("c", unit.conv3, unit.gn3)):
                params[f"{prefix}{letter}/standardized_conv2d/kernel"] = conv.weight
                params[f"{prefix}{letter}/group_norm/gamma"] = norm.weight
                params[f"{prefix}{letter}/group_norm/beta"] = norm.bias
            if unit.downsample is not None:
                params[f"{prefix}a/proj/standardized_conv2d/kernel"] = unit.downsample.weight
    params["resnet/group_norm/gamma"] = model.head.gn.weight
    params["resnet/group_norm/beta"] = model.head.gn.bias
    params[HEAD_KERNEL] = model.head.conv.weight
    params[HEAD_BIAS] = model.head.conv.bias
    return params


def _official_shape(tensor: torch.Tensor) -> tuple[int, ...]:
    shape = tuple(tensor.shape)
    return (shape[2], shape[3], shape[1], shape[0]) if len(shape) == 4 else shape  # OIHW -> HWIO


def _to_torch(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array.transpose(3, 2, 0, 1) if array.ndim == 4 else array))


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All arrays of an `.npz` file; an unreadable file is an error naming it."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise CifarlabError(f"{path} is not a readable .npz checkpoint ({exc}); download it again "
                            f"or point weights= at an intact file.") from exc


def load_weights(model: nn.Module, weights: str | os.PathLike, *, zero_head: bool = True) -> None:
    """Load an official name or `.npz` path into a BiT ResNet-V2 (see `load_arrays`)."""
    path = resolve(weights, model)
    load_arrays(model, read_npz(path), zero_head=zero_head, source=str(path))


def load_arrays(model: nn.Module, arrays: dict[str, np.ndarray], *, zero_head: bool = True,
                source: str = "checkpoint") -> None:
    """Copy official-layout arrays into `model`; any key missing, unexpected or mis-shaped is refused.

    A head with another number of classes is not loaded: the model keeps its own head,
    zeroed when `zero_head`.
    """
    params = official_params(model)
    missing = [key for key in params if key not in arrays]
    unexpected = sorted(key for key in arrays if key not in params)
    misshaped = [f"{key} {tuple(arrays[key].shape)} (model needs {_official_shape(param)})"
                 for key, param in params.items()
                 if key in arrays and key not in (HEAD_KERNEL, HEAD_BIAS)
                 and tuple(arrays[key].shape) != _official_shape(param)]
    misshaped += _head_problems(arrays, params[HEAD_KERNEL])
    if missing or unexpected or misshaped:
        raise CifarlabError(_mismatch_message(model, arrays, source, missing, unexpected, misshaped))
    head_fits = arrays[HEAD_KERNEL].shape[-1] == params[HEAD_KERNEL].shape[0]
    with torch.no_grad():
        for key, param in params.items():
            if head_fits or key not in (HEAD_KERNEL, HEAD_BIAS):
                param.copy_(_to_torch(arrays[key]))
        if not head_fits and zero_head:
            params[HEAD_KERNEL].zero_()
            params[HEAD_BIAS].zero_()


def _head_problems(arrays: dict[str, np.ndarray], head: torch.Tensor) -> list[str]:
    # The head's class count may differ (it is then replaced); its input channels may not.
    if HEAD_KERNEL not in arrays or HEAD_BIAS not in arrays:
        return []
    kernel, bias = arrays[HEAD_KERNEL].shape, arrays[HEAD_BIAS].shape
    problems = []
    if len(kernel) != 4 or kernel[:3] != (1, 1, head.shape[1]):
        problems.append(f"{HEAD_KERNEL} {kernel} (model needs (1, 1, {head.shape[1]}, classes))")
    elif bias != (kernel[-1],):
        problems.append(f"{HEAD_BIAS} {bias} (model needs ({kernel[-1]},) to match the head kernel)")
    return problems


def _mismatch_message(model, arrays, source, missing, unexpected, misshaped) -> str:
    parts = [f"{label} ({len(keys)}): {_some(keys)}" for label, keys in
             (("missing keys", missing), ("unexpected keys", unexpected), ("mis-shaped", misshaped)) if keys]
    have = getattr(model, "arch", None)
    return (f"checkpoint {source} does not fit {'bit_' + have if have else 'this BiT network'} "
            f"(units {model.depths}, width x{model.width}): {'; '.join(parts)}. The checkpoint looks like "
            f"{_describe(arrays)}; create the model that matches it.")


def _some(keys: list[str], shown: int = 8) -> str:
    more = f", ... and {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more


def _describe(arrays: dict[str, np.ndarray]) -> str:
    units: dict[int, set[str]] = {}
    for key in arrays:
        if match := re.match(r"resnet/block(\d+)/(unit\d+)/", key):
            units.setdefault(int(match.group(1)), set()).add(match.group(2))
    depths = tuple(len(units[b]) for b in sorted(units))
    if ROOT_KERNEL not in arrays or not depths:
        return "no BiT ResNet-V2 (no root or unit keys)"
    width = arrays[ROOT_KERNEL].shape[-1] / 64
    width = int(width) if width == int(width) else width
    layers = 3 * sum(depths) + 2
    return f"units {depths}, width x{width} (bit_r{layers}x{width})"


def save_npz(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write a BiT ResNet-V2 as an official-layout `.npz` (float32, kernels HWIO), atomically."""
    model = getattr(model, "_orig_mod", model)  # torch.compile wrapper
    model = getattr(model, "module", model)  # DistributedDataParallel wrapper
    if not all(hasattr(model, part) for part in ("root", "body", "head")):
        raise CifarlabError(f"save_npz writes BiT ResNet-V2 networks only, not {type(model).__name__}; "
                            f"train a bit_* model to export it in the official layout.")
    arrays = {}
    for key, param in official_params(model).items():
        array = param.detach().to("cpu", torch.float32).numpy()
        arrays[key] = np.ascontiguousarray(array.transpose(2, 3, 1, 0) if array.ndim == 4 else array)
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        np.savez(out, **arrays)  # a file object, so numpy does not append ".npz" to the temp name
    return path

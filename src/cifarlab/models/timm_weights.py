"""Pretrained weights for `timm/<name>` models: find the file, read it, fit it to the CIFAR-stem network.

`weights` is a file (a timm `.safetensors` / `.pth`, a torchvision state dict, a cifarlab
checkpoint), a folder holding `model.safetensors` or `pytorch_model.bin` (a Hugging Face
snapshot), or the word `pretrained`: the model's default timm weights as the Hugging Face cache
holds them (`models--timm--<name>.<tag>`), read without going online. torchvision's ResNet and
ResNeXt state dicts use the same parameter names as timm's, so they load as they are; a file
written by `cifarlab export` or a run's checkpoint brings the mean/std it was trained with.

The rebuilt stem conv is 3x3 where the pretrained one is larger (ResNet's 7x7, ConvNeXt's 4x4):
its kernel is resampled to 3x3 and scaled by (k/3)^2 so each filter keeps the sum of its taps.
Why: the original stride-2 7x7 conv applied to an image upsampled 2x sees 3.5 source pixels
across, so on the native 32x32 image the same filter is (nearly) its 7x7 kernel shrunk to ~3x3
with the sum of its weights unchanged; the test compares the two stems' outputs on real images.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cifarlab.errors import CifarlabError

FROM_CACHE = "pretrained"  # model.weights=pretrained: the model's default timm weights from the Hugging Face cache
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # what a timm repository on the Hub holds


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "huggingface"
    return Path(home) / "hub"


def _cached_snapshot_file(repo_id: str) -> Path | None:
    """The weights file of `repo_id` in the hub cache (the `main` revision when recorded), or None."""
    repo = hub_cache_dir() / f"models--{repo_id.replace('/', '--')}"
    revisions = []
    main = repo / "refs" / "main"
    if main.is_file():
        revisions.append(repo / "snapshots" / main.read_text().strip())
    revisions.extend(sorted((repo / "snapshots").glob("*")))
    for snapshot in revisions:
        for name in WEIGHT_FILES:
            if (snapshot / name).is_file():
                return snapshot / name
    return None


def how_to_get(timm_name: str, repo_id: str | None) -> str:
    """One sentence on how to obtain the weights of `timm_name` for a machine without internet."""
    if repo_id is None:
        return (f"timm publishes no weights for {timm_name}; give model.weights=FILE with a state dict you made, "
                "or leave model.weights unset to train from random weights")
    tagged = repo_id.split("/")[-1]
    return (f"on a machine with internet run `python -c \"import timm; timm.create_model('{tagged}', "
            f"pretrained=True)\"` and copy its Hugging Face cache ({hub_cache_dir()}) here, or download "
            f"model.safetensors from https://huggingface.co/{repo_id} and give model.weights=PATH "
            "(for ResNet and ResNeXt names a torchvision state dict such as resnet50-*.pth works too)")


def resolve_weights_file(weights: str, timm_name: str, repo_id: str | None) -> Path:
    """The file that `weights` names: a file, a snapshot folder, or `pretrained` (the hub cache); else an error."""
    if weights == FROM_CACHE:
        found = _cached_snapshot_file(repo_id) if repo_id else None
        if found is None:
            looked = hub_cache_dir() / f"models--{(repo_id or timm_name).replace('/', '--')}" / "snapshots"
            raise CifarlabError(f"no cached timm weights for {timm_name}: looked for {' or '.join(WEIGHT_FILES)} "
                                f"under {looked}; {how_to_get(timm_name, repo_id)}.")
        return found
    path = Path(weights).expanduser()
    if path.is_dir():
        for name in WEIGHT_FILES:
            if (path / name).is_file():
                return path / name
        raise CifarlabError(f"weights folder {path} holds neither {' nor '.join(WEIGHT_FILES)}; "
                            f"{how_to_get(timm_name, repo_id)}.")
    if not path.is_file():
        raise CifarlabError(f"weights file {path} not found (model.weights); {how_to_get(timm_name, repo_id)}.")
    return path


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """The tensors of a `.safetensors` or torch-pickled file, unwrapped from `state_dict` / `model` and `module.`."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: say which and what to do
        raise CifarlabError(f"cannot read weights file {path} ({exc}); give a timm .safetensors/.pth file or a "
                            "torchvision state dict, downloaded again if it may be truncated.") from exc
    for wrapper in ("state_dict", "model"):  # training checkpoints keep the weights one level down
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(value, Tensor) for value in state.values()):
        raise CifarlabError(f"weights file {path} holds no state dict of tensors; give a timm .safetensors/.pth file "
                            "or a torchvision state dict.")
    # DataParallel / DistributedDataParallel checkpoints prefix every name with `module.`.
    return {key.removeprefix("module."): value for key, value in state.items()}


def recorded_normalisation(path: Path) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """(mean, std) that cifarlab recorded with the weights (an exported file, a run's checkpoint); None otherwise."""
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        from cifarlab.models.portable import FORMAT, read_header

        with safe_open(str(path), framework="pt") as handle:
            if (handle.metadata() or {}).get("format") != FORMAT:
                return None
        config = read_header(path).input_config
        return (config.mean, config.std) if config.mean is not None else None
    checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if isinstance(checkpoint, dict) and checkpoint.get("mean") is not None and checkpoint.get("std") is not None:
        return tuple(checkpoint["mean"]), tuple(checkpoint["std"])
    return None


def to_timm_names(state: dict[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """Rename a family's original checkpoint layout (ConvNeXt's Facebook release) to timm's, as timm itself does."""
    remap = getattr(sys.modules[type(model).__module__], "checkpoint_filter_fn", None)
    return remap(state, model) if remap is not None else state


def resample_kernel(kernel: Tensor, size: int = 3) -> Tensor:
    """A `(out, in, k, k)` conv kernel shrunk (or grown) to `size` x `size`, each filter keeping the sum of its taps."""
    resized = F.interpolate(kernel.float(), size=(size, size), mode="bilinear", align_corners=False,
                            antialias=True)
    # Bilinear (antialiased) resizing keeps the mean tap; the sum scales with the number of taps.
    area = kernel.shape[-1] * kernel.shape[-2] / (size * size)
    return (resized * area).to(kernel.dtype)


def load_backbone_weights(model: nn.Module, state: dict[str, Tensor], *, stem_key: str, classifier: str,
                          removed: tuple[str, ...], source: str, model_name: str) -> None:
    """Load `state` (timm names) into the CIFAR-stem `model`: the stem kernel resampled, a foreign head left out.

    `stem_key` names the rebuilt stem conv's weight, `classifier` the head module (its weights are
    loaded only when their names and shapes fit, so an ImageNet head never reaches a CIFAR model),
    `removed` the modules the rebuild took out (the max-pool). Anything else that does not fit is
    an error naming the keys: the file is for another network.
    """
    own = model.state_dict()
    state = dict(state)
    if stem_key in state and stem_key in own and state[stem_key].shape != own[stem_key].shape:
        pretrained, target = state[stem_key], own[stem_key]
        if pretrained.shape[:2] != target.shape[:2]:
            raise CifarlabError(f"weights {source} do not fit {model_name}: its stem has {tuple(pretrained.shape)} "
                                f"where the model has {tuple(target.shape)}; give weights made for this model.")
        state[stem_key] = resample_kernel(pretrained, target.shape[-1])
    head = f"{classifier}."
    for key in [k for k in state if k.startswith(head) or k.startswith(removed)]:
        if key not in own or state[key].shape != own[key].shape:
            del state[key]
    missing = [k for k in own if k not in state and not k.startswith(head) and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    wrong_shape = [k for k in state if k in own and state[k].shape != own[k].shape]
    if missing or unexpected or wrong_shape:
        parts = [f"{len(keys)} {what} ({', '.join(keys[:4])}{', ...' if len(keys) > 4 else ''})"
                 for what, keys in (("missing", missing), ("unexpected", unexpected), ("of another shape", wrong_shape))
                 if keys]
        raise CifarlabError(f"weights {source} do not fit {model_name}: parameters {'; '.join(parts)}; give weights "
                            "made for this model (a timm or torchvision state dict of the same architecture).")
    model.load_state_dict(state, strict=False)

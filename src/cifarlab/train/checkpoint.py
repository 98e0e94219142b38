"""The one checkpoint format: everything needed to continue a run exactly, written atomically."""

from __future__ import annotations

import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cifarlab.atomic import atomic_path
from cifarlab.errors import CifarlabError

FORMAT = "cifarlab-checkpoint/1"


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, **content: Any) -> None:
    """Write a checkpoint (model, optimiser, schedule, scaler, EMA, RNG, step, recipe...) atomically."""
    content = {"format": FORMAT, **content}
    with atomic_path(path) as tmp:
        torch.save(content, tmp)


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint; a missing, truncated or foreign file is one clear error."""
    path = Path(path)
    if not path.is_file():
        raise CifarlabError(f"checkpoint {path} does not exist; give a run folder or a .pt file written by cifarlab")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise CifarlabError(
            f"checkpoint {path} is corrupt or truncated ({type(exc).__name__}: {str(exc)[:120]}); "
            "use the run's other checkpoint (best.pt or last.pt) or retrain"
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CifarlabError(f"{path} is not a cifarlab checkpoint (expected format {FORMAT})")
    return ckpt


def load_model_state(model: torch.nn.Module, state: dict, source: str) -> None:
    """Load weights, refusing a checkpoint of another model with the keys that differ."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [k for k in set(own) & set(state) if own[k].shape != state[k].shape]
    if missing or unexpected or shapes:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", sorted(shapes))):
            if keys:
                parts.append(f"{label}: {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}")
        raise CifarlabError(
            f"checkpoint {source} does not fit this model ({'; '.join(parts)}); "
            "it was written for another model or class count: use the recipe it was trained with"
        )
    model.load_state_dict(state)


def resolve_checkpoint(run_or_file: str | Path, prefer: str = "best.pt") -> Path:
    """A run folder means its `prefer` checkpoint (else last.pt); a file means itself."""
    p = Path(run_or_file)
    if p.is_dir():
        for name in (prefer, "last.pt", "best.pt"):
            if (p / name).is_file():
                return p / name
        raise CifarlabError(f"run folder {p} holds no checkpoint (best.pt or last.pt); train it first")
    if not p.exists():
        raise CifarlabError(f"{p} is neither a run folder nor a checkpoint file")
    return p

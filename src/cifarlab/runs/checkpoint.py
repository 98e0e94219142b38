"""The one checkpoint format: everything needed to continue a run exactly, written atomically.

A checkpoint holds only tensors and plain values (dicts, lists, tuples, strings, numbers), so it
is read with `torch.load(weights_only=True)`: loading a file can never run code from it. A file
that needs anything more is refused before any of it is unpickled; checkpoints of the previous
format (random-number state as pickled numpy and Python objects) are turned into this one by
`convert_checkpoint` (`cifarlab convert-checkpoint`), which still runs nothing from them.
"""

from __future__ import annotations

import pickle
import pickletools
import random
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cifarlab.atomic import atomic_path
from cifarlab.errors import CifarlabError
from cifarlab.models import create

FORMAT = "cifarlab-checkpoint/2"
OLD_FORMATS = ("cifarlab-checkpoint/1",)
_GLOBAL_IN_MESSAGE = re.compile(r"Unsupported global: GLOBAL (\S+)")


# ---------------------------------------------------------------- random-number state as tensors


def rng_state() -> dict:
    """Every random-number generator a run draws from, as tensors and plain values only."""
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    version, python_state, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)),
                  "position": int(position), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(cached_gaussian)},
        # Python's Mersenne Twister: 624 words and an index, all < 2**32, so int64 holds them exactly.
        "python": {"version": int(version), "state": torch.tensor(python_state, dtype=torch.int64),
                   "gauss_next": gauss_next},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore the generators saved by `rng_state`."""
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["position"], numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["state"].tolist()), python_state["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------- writing and reading


def save_checkpoint(path: str | Path, **content: Any) -> None:
    """Write a checkpoint (model, optimiser, schedule, scaler, EMA, RNG, step, recipe...) atomically.

    Content that `weights_only=True` could not read back (a numpy array, a dataclass...) is a bug
    in the caller: it raises TypeError and nothing is written.
    """
    content = {"format": FORMAT, **content}
    with atomic_path(path) as tmp:
        # Through a Python file object a full disk is an OSError (ENOSPC) that atomic_path explains;
        # torch's own writer would turn it into an opaque RuntimeError.
        try:
            with open(tmp, "wb") as f:
                torch.save(content, f)
        except RuntimeError as exc:
            # A failed write surfaces as torch's RuntimeError raised while handling the OSError.
            if not isinstance(exc.__context__, OSError):
                raise
            raise exc.__context__ from None
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(tmp)
        if unsafe:
            raise TypeError(f"checkpoint content for {path} needs {', '.join(sorted(unsafe))} to load; "
                            "store tensors and plain values only")


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint without running anything in it; a missing, truncated, unsafe or foreign file is one clear error."""
    path = Path(path)
    if not path.is_file():
        raise CifarlabError(f"checkpoint {path} does not exist; give a run folder or a .pt file written by cifarlab")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # The opcodes of a zip checkpoint name what it would import; an old non-zip file only says
        # so in torch's message ("Unsupported global: GLOBAL io.open was not an allowed global").
        unsafe = unsafe_globals(path) or _GLOBAL_IN_MESSAGE.findall(str(exc))
        if unsafe:
            raise refusal(path, unsafe) from None
        raise _corrupt(path, exc) from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise _corrupt(path, exc) from exc
    except (KeyError, IndexError) as exc:
        # A file that is not a zip is read as a legacy pickle: text or random bytes end in the
        # unpickler's memo or stack lookups ("hello" reads as BINGET of an empty memo).
        raise _corrupt(path, exc) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else None
        if found in OLD_FORMATS:
            raise _old_format(path, found)
        raise CifarlabError(f"{path} is not a cifarlab checkpoint (expected format {FORMAT}, found "
                            f"{found or type(ckpt).__name__}); give a .pt file written by cifarlab")
    return ckpt


def unsafe_globals(path: str | Path) -> list[str]:
    """The Python objects unpickling `path` would import and call beyond tensors and plain values.

    Read from the pickle's opcodes without executing any of them; empty when the file is not
    a readable torch zip (then it is simply corrupt).
    """
    try:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # any failure to read the opcodes means "corrupt", reported by the caller
        return []


def format_of(path: str | Path) -> str | None:
    """The `format` string a checkpoint's pickle names, found without unpickling it; None if absent."""
    try:
        with zipfile.ZipFile(path) as archive:
            name = next(n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl")
            data = archive.read(name)
        for _opcode, argument, _ in pickletools.genops(data):
            if isinstance(argument, str) and argument.startswith("cifarlab-checkpoint/"):
                return argument
    except Exception:  # unreadable: not ours, reported as such by the caller
        return None
    return None


def refusal(path: str | Path, unsafe: list[str]) -> CifarlabError:
    """The error for a file that would run code while loading: an old cifarlab one or a foreign one."""
    found = format_of(path)
    if found in OLD_FORMATS:
        return _old_format(path, found)
    shown = ", ".join(unsafe[:5]) + (" ..." if len(unsafe) > 5 else "")
    return CifarlabError(
        f"refusing to load {path}: unpickling it would import and call {shown}, which can run any code; "
        "cifarlab checkpoints hold only tensors and plain values. Nothing in it was executed. "
        f"If you made this file yourself, `cifarlab convert-checkpoint {path} --trust` loads it in full "
        "(running that code) and rewrites it without it; otherwise delete it"
    )


def _old_format(path: str | Path, found: str) -> CifarlabError:
    return CifarlabError(
        f"{path} is a checkpoint of an older cifarlab ({found}) that stores random-number state as "
        f"pickled objects; convert it once with `cifarlab convert-checkpoint {path}` and use it again"
    )


def _is_torch_file(path: Path) -> bool:
    """Whether the file starts as torch.save writes: a zip archive, or (torch < 1.6) a pickle's protocol opcode."""
    with open(path, "rb") as handle:
        head = handle.read(2)
    return head == b"PK" or head[:1] == b"\x80"


def _corrupt(path: Path, exc: BaseException) -> CifarlabError:
    if path.stat().st_size and not _is_torch_file(path):  # an empty file is a checkpoint cut to nothing
        # Text, an image or a recipe given where a checkpoint belongs: torch's unpickling message about
        # it (weights_only, opcodes) would only mislead.
        return CifarlabError(
            f"{path} is not a checkpoint: torch.save files start as a zip archive or a pickle, this one does "
            "not; give best.pt or last.pt from a run folder, or the run folder itself"
        )
    return CifarlabError(
        f"checkpoint {path} is corrupt or truncated ({type(exc).__name__}: {str(exc)[:120]}); "
        "use the run's other checkpoint (best.pt or last.pt) or retrain"
    )


# ---------------------------------------------------------------- the previous format


# What a cifarlab-checkpoint/1 file pickled besides tensors and plain values: numpy's RNG key array.
# Rebuilding an array from these runs no code of the file's choosing, so they are allowed in conversion.
_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]  # numpy's array constructor, wherever this numpy keeps it
_OLD_NUMPY_GLOBALS = {
    "numpy.core.multiarray._reconstruct": _RECONSTRUCT,
    "numpy._core.multiarray._reconstruct": _RECONSTRUCT,
    "numpy.ndarray": np.ndarray,
    "numpy.dtype": np.dtype,
    "numpy.dtypes.UInt32DType": type(np.dtype(np.uint32)),
}


def convert_checkpoint(path: str | Path, out: str | Path | None = None, trust: bool = False) -> Path:
    """Rewrite a cifarlab-checkpoint/1 file in the current format (in place unless `out` is given).

    A genuine old checkpoint is read with `weights_only=True` plus numpy's array constructors,
    so nothing in it runs. A file that needs anything else is refused unless `trust` is set: then
    it is unpickled in full (`weights_only=False`), which runs whatever code it holds.
    """
    path = Path(path)
    if not path.is_file():
        raise CifarlabError(f"checkpoint {path} does not exist; give the .pt file to convert")
    foreign = [name for name in unsafe_globals(path) if name not in _OLD_NUMPY_GLOBALS]
    if foreign and not trust:
        raise CifarlabError(
            f"refusing to convert {path}: unpickling it would import and call {', '.join(foreign[:5])}, "
            "which an old cifarlab checkpoint never needs and which can run any code. Nothing was executed. "
            "Add --trust only if you made this file yourself"
        )
    try:
        if foreign:
            content = torch.load(path, map_location="cpu", weights_only=False)
        else:
            allowed = [(obj, name) for name, obj in _OLD_NUMPY_GLOBALS.items()]
            with torch.serialization.safe_globals(allowed):
                content = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise _corrupt(path, exc) from exc
    found = content.get("format") if isinstance(content, dict) else None
    if found == FORMAT:
        raise CifarlabError(f"{path} is already in the current format ({FORMAT}); nothing to convert")
    if found not in OLD_FORMATS:
        raise CifarlabError(f"{path} is not a cifarlab checkpoint (format {found or type(content).__name__}); "
                            "only checkpoints written by cifarlab can be converted")
    try:
        content["rng"] = _rng_from_objects(content["rng"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CifarlabError(f"{path} says {found} but its random-number state is not cifarlab's "
                            f"({type(exc).__name__}: {exc}); it cannot be converted: retrain") from exc
    del content["format"]
    target = Path(out) if out is not None else path
    save_checkpoint(target, **content)
    return target


def _rng_from_objects(old: dict) -> dict:
    """The random-number state of a format-1 checkpoint (numpy and Python tuples) as `rng_state` stores it."""
    kind, keys, position, has_gauss, cached_gaussian = old["numpy"]
    version, python_state, gauss_next = old["python"]
    state = {
        "torch": old["torch"],
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys).astype(np.int64)),
                  "position": int(position), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(cached_gaussian)},
        "python": {"version": int(version), "state": torch.tensor(python_state, dtype=torch.int64),
                   "gauss_next": None if gauss_next is None else float(gauss_next)},
    }
    if "cuda" in old:
        state["cuda"] = old["cuda"]
    return state


# ---------------------------------------------------------------- weights


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


def model_from_checkpoint(name: str, options: dict, saved: dict, source: str) -> torch.nn.Module:
    """The network `name` (built with `options`) holding the weights of the checkpoint content `saved`.

    The one way cifarlab turns a checkpoint back into a model (a run folder's `Run.model`, `cifarlab
    eval` of a run or of a lone file): built without pretrained weights, since the checkpoint holds
    every weight, and refused with the differing keys when the checkpoint is of another network.
    """
    model = create(name, num_classes=int(saved["num_classes"]), **options)
    load_model_state(model, saved["model"], source)
    return model


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

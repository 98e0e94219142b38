"""The heavy augmentation ops a recipe may name, their parameters, defaults and accepted ranges.

Pure Python (no torch), so a recipe can be checked when it loads. `augment.ops` is a list of
mappings such as `{name: rotate, p: 0.5, degrees: 15}`; `check_ops` fills in the defaults and
refuses unknown names, unknown parameters and values out of range with one message naming the fix.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Optional

from cifarlab.config.fields import show
from cifarlab.errors import CifarlabError


@dataclass(frozen=True)
class Number:
    """One number in [lo, hi]."""

    default: float
    lo: float
    hi: float
    help: str
    integer: bool = False


@dataclass(frozen=True)
class Span(Number):
    """A [low, high] range a per-image value is drawn uniformly from; one number means a fixed value.

    Bounds, help and `integer` as a Number's; only the default is a pair.
    """

    default: tuple[float, float]


@dataclass(frozen=True)
class Fill:
    """`random` (uniform noise) or a grey level in [0, 1]."""

    default: Any
    help: str


OPS: dict[str, dict[str, Any]] = {
    "random_resized_crop": {
        "scale": Span((0.35, 1.0), 0.01, 1.0, "share of the image area kept"),
        "ratio": Span((0.75, 4 / 3), 0.1, 10.0, "aspect ratio (width / height) of the kept box"),
    },
    "rotate": {"degrees": Number(15.0, 0.0, 180.0, "angle drawn from [-degrees, degrees]")},
    "brightness": {"amount": Number(0.2, 0.0, 1.0, "factor drawn from [1 - amount, 1 + amount]")},
    "contrast": {"amount": Number(0.2, 0.0, 1.0, "factor drawn from [1 - amount, 1 + amount]")},
    "saturation": {"amount": Number(0.2, 0.0, 1.0, "factor drawn from [1 - amount, 1 + amount]")},
    "hue": {"amount": Number(0.05, 0.0, 0.5, "hue shift drawn from [-amount, amount] of a full turn")},
    "color_jitter": {
        "brightness": Number(0.2, 0.0, 1.0, "brightness factor spread"),
        "contrast": Number(0.2, 0.0, 1.0, "contrast factor spread"),
        "saturation": Number(0.2, 0.0, 1.0, "saturation factor spread"),
        "hue": Number(0.05, 0.0, 0.5, "hue shift spread, a share of a full turn"),
    },
    "gaussian_noise": {"std": Span((0.01, 0.05), 0.0, 1.0, "noise standard deviation, pixel values in [0, 1]")},
    "jpeg": {"quality": Span((30, 90), 1, 100, "JPEG quality (libjpeg scale)", integer=True)},
    "clahe": {
        "clip_limit": Span((1.0, 4.0), 0.1, 100.0, "contrast limit of each tile's histogram"),
        "grid": Number(4, 1, 64, "tiles per side", integer=True),
    },
    "random_erasing": {
        "area": Span((0.02, 0.33), 0.0, 1.0, "share of the image area erased"),
        "ratio": Span((0.3, 3.3), 0.01, 100.0, "aspect ratio of the erased box"),
        "fill": Fill("random", "random (uniform noise) or a grey level in [0, 1]"),
    },
}
OP_HELP = {
    "random_resized_crop": "crop a random box and resize it back to the image size",
    "rotate": "rotate about the centre, corners filled with black",
    "brightness": "scale pixel values",
    "contrast": "scale the distance from the image's mean grey",
    "saturation": "scale the distance from each pixel's grey",
    "hue": "rotate the hue",
    "color_jitter": "brightness, contrast, saturation and hue, in that order",
    "gaussian_noise": "add Gaussian noise",
    "jpeg": "JPEG compression artefacts (8x8 DCT quantisation, 4:2:0 chroma)",
    "clahe": "contrast-limited adaptive histogram equalisation of the luma",
    "random_erasing": "erase a random box (Zhong et al. 2017)",
}
POLICIES = ("none", "randaugment", "trivialaugment", "augmix")


@dataclass(frozen=True)
class OpSetting:
    """One checked entry of `augment.ops`: the op, its probability and every parameter."""

    name: str
    p: float
    params: dict[str, Any] = field(default_factory=dict)


def check_ops(ops: list[dict], key: str = "augment.ops") -> list[OpSetting]:
    """The checked ops of a recipe, defaults filled in; CifarlabError naming the entry and the fix."""
    return [_check_op(entry, f"{key}[{i}]") for i, entry in enumerate(ops)]


def check_augment(augment: Any, loss: Optional[str] = None) -> None:
    """Check the heavy-augmentation settings of an AugmentConfig (and that train.loss agrees with them)."""
    problem = augment_problem(augment, loss)
    if problem is not None:
        raise CifarlabError(problem[1])


def augment_problem(augment: Any, loss: Optional[str] = None) -> Optional[tuple[str, str]]:
    """(dotted key, message) of the first problem of the heavy-augmentation settings, or None."""
    try:
        check_ops(augment.ops)
    except CifarlabError as exc:
        return "augment.ops", str(exc)
    js = augment.policy == "augmix" and augment.augmix_js
    if augment.augmix_js and augment.policy != "augmix":
        return "augment.augmix_js", ("augment.augmix_js=true needs augment.policy=augmix; set both, "
                                     "or augment.augmix_js=false")
    if js and (augment.mixup_alpha > 0 or augment.cutmix_alpha > 0):
        return "augment.augmix_js", ("augment.augmix_js cannot be combined with MixUp/CutMix (their partner would "
                                     "cross the clean and augmented views); set augment.mixup_alpha=0 "
                                     "augment.cutmix_alpha=0")
    if loss is not None and js != (loss == "augmix_js"):
        return "train.loss", ("the Jensen-Shannon loss and its views go together: set train.loss=augmix_js with "
                              "augment.policy=augmix augment.augmix_js=true, or neither")
    return None


def _check_op(entry: Any, key: str) -> OpSetting:
    if not isinstance(entry, dict) or "name" not in entry:
        raise CifarlabError(f"{key} must be a mapping with a name, e.g. {{name: rotate, p: 0.5, degrees: 15}}; "
                            f"got {show(entry)}")
    name = entry["name"]
    if name not in OPS:
        close = difflib.get_close_matches(str(name), OPS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise CifarlabError(f"{key}: unknown augmentation op {show(name)}{hint}; ops are {', '.join(OPS)}")
    spec = OPS[name]
    p = entry.get("p", 0.5)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise CifarlabError(f"{key} ({name}): p must be a probability between 0 and 1, got {show(p)}; e.g. p: 0.5")
    params = {}
    for param, value in entry.items():
        if param in ("name", "p"):
            continue
        if param not in spec:
            close = difflib.get_close_matches(str(param), spec, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise CifarlabError(f"{key} ({name}): unknown parameter {show(param)}{hint}; {name} takes "
                                f"{', '.join(['p', *spec]) }")
        params[param] = _check_value(spec[param], value, f"{key} ({name}): {param}")
    for param, kind in spec.items():
        params.setdefault(param, kind.default)
    return OpSetting(name, float(p), params)


def _check_value(kind: Any, value: Any, where: str) -> Any:
    if isinstance(kind, Fill):
        if value == "random" or (_is_number(value) and 0.0 <= value <= 1.0):
            return value
        raise CifarlabError(f"{where} must be 'random' or a grey level between 0 and 1, got {show(value)}")
    if not isinstance(kind, Span):  # one Number
        if _is_number(value) and kind.lo <= value <= kind.hi and (not kind.integer or float(value).is_integer()):
            return int(value) if kind.integer else float(value)
        raise CifarlabError(f"{where} must be {'an integer' if kind.integer else 'a number'} between {kind.lo:g} "
                            f"and {kind.hi:g} ({kind.help}), got {show(value)}; e.g. {kind.default:g}")
    pair = [value, value] if _is_number(value) else value
    example = f"[{kind.default[0]:g}, {kind.default[1]:g}]"
    if (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(_is_number(v) for v in pair)
            and kind.lo <= pair[0] <= pair[1] <= kind.hi
            and (not kind.integer or all(float(v).is_integer() for v in pair))):
        cast = int if kind.integer else float
        return (cast(pair[0]), cast(pair[1]))
    raise CifarlabError(f"{where} must be a number or a [low, high] pair with {kind.lo:g} <= low <= high <= "
                        f"{kind.hi:g} ({kind.help}), got {show(value)}; e.g. {example}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)

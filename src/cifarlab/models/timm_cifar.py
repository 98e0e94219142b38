"""timm backbones for 32x32 images: `timm/<name>` builds timm's network with a CIFAR stem and a chosen head.

Any timm ResNet-family name (resnet18, resnet50d, resnext50_32x4d, seresnext26d_32x4d, resnet10t,
...), RegNet or ConvNeXt works. ImageNet stems shrink a 224 image 4x before the first stage, which
leaves a 32x32 image 8x8; here the stem's first conv becomes a 3x3 stride-1 conv (`stem_stride=2`
halves once) and ResNet's max-pool goes, so the stages see CIFAR-sized maps (ResNet's last stage
at 4x4). Options (`model.options`):

    head             linear (timm's own classifier) or mlp (Linear -> activation -> Dropout -> Linear)
    head_hidden      width of the mlp head's hidden layer
    head_dropout     dropout inside the mlp head, after its hidden activation
    drop_rate        dropout on the pooled features before the head (timm's drop_rate)
    drop_path_rate   stochastic depth
    drop_block_rate  DropBlock in the last two stages (ResNet families only)
    activation       the network's activation, any timm name (relu, silu, gelu, leaky_relu, mish, ...)
    stem_stride      1 (default) or 2

With `weights` (see `cifarlab.models.timm_weights`) the network loads them and normalises with
the mean/std of the weights' own timm config; without, it trains from random weights on the
training data's own statistics. The classifier is `model.get_classifier()` (timm's API): the
optimiser and `model.freeze` use it to tell the head from the backbone.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from torch import nn

from cifarlab.errors import CifarlabError
from cifarlab.models.input_config import InputConfig
from cifarlab.models.registry import register_prefix
from cifarlab.models.timm_weights import (
    load_backbone_weights,
    read_state_dict,
    recorded_normalisation,
    resolve_weights_file,
    to_timm_names,
)

PREFIX = "timm/"
FAMILIES = ("ResNet", "RegNet", "ConvNeXt")  # timm classes whose stem this module knows how to rebuild
INSTALL = "pip install 'cifarlab[timm]'"


def _timm():
    try:
        import timm
    except ImportError as exc:
        raise CifarlabError(f"timm/ models need the timm package: {INSTALL}") from exc
    return timm


def _replace(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, leaf = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def rebuild_stem(model: nn.Module, stride: int = 1) -> str:
    """Make the first conv a 3x3 conv of `stride` (padding 1) and drop ResNet's max-pool; returns the conv's path."""
    path = model.pretrained_cfg["first_conv"]
    old: nn.Conv2d = model.get_submodule(path)
    new = nn.Conv2d(old.in_channels, old.out_channels, 3, stride=stride, padding=1, bias=old.bias is not None)
    if old.kernel_size == (3, 3):  # deep stems and RegNet: the same kernel, only the stride changes
        new.load_state_dict(old.state_dict())
    _replace(model, path, new)
    if isinstance(getattr(model, "maxpool", None), nn.Module):
        model.maxpool = nn.Identity()
    return path


def mlp_head(in_features: int, hidden: int, num_classes: int, activation: nn.Module, dropout: float) -> nn.Sequential:
    """Linear -> activation -> Dropout -> Linear: the two-layer head DL4DS fine-tuned with."""
    return nn.Sequential(nn.Linear(in_features, hidden), activation, nn.Dropout(dropout), nn.Linear(hidden, num_classes))


def _check_name(timm, timm_name: str) -> None:
    if not timm.is_model(timm_name):
        close = difflib.get_close_matches(timm_name, timm.list_models(), n=5, cutoff=0.6)
        hint = f" Closest: {', '.join(PREFIX + c for c in close)}." if close else ""
        raise CifarlabError(f"timm has no model {timm_name!r}.{hint} `python -c \"import timm; "
                            f"print(timm.list_models('resnet*'))\"` lists them.")


def _check_head(head: str, head_dropout: float, stem_stride: int) -> None:
    if head not in ("linear", "mlp"):
        raise CifarlabError(f"model.options.head={head!r} is not a head; use linear or mlp")
    if head == "linear" and head_dropout:
        raise CifarlabError("model.options.head_dropout belongs to the mlp head; with the linear head use "
                            "model.options.drop_rate (dropout before the classifier), or set head: mlp")
    if stem_stride not in (1, 2):
        raise CifarlabError(f"model.options.stem_stride={stem_stride} is not possible; use 1 or 2")


def _activation_layer(timm, activation: str):
    try:
        return timm.layers.get_act_layer(activation)
    except KeyError as exc:
        raise CifarlabError(f"timm has no activation {activation!r}; use relu, silu, gelu, leaky_relu, "
                            "mish or another timm activation name") from exc


def _create(timm, timm_name: str, options: dict[str, Any]) -> nn.Module:
    """timm's network, refused with the reason when the options or its family do not fit."""
    try:
        model = timm.create_model(timm_name, pretrained=False, **options)
    except TypeError as exc:
        raise CifarlabError(f"{PREFIX}{timm_name} does not accept these options ({exc}); drop_block_rate exists "
                            "for ResNet families only") from exc
    if type(model).__name__ not in FAMILIES:
        raise CifarlabError(f"{PREFIX}{timm_name} is a timm {type(model).__name__}; cifarlab rebuilds the stem of "
                            f"{', '.join(FAMILIES)} families only: pick one of those (timm/resnet50, "
                            "timm/regnetx_002, timm/convnext_atto, ...)")
    return model


def build_timm_cifar(timm_name: str, num_classes: int = 10, weights: str | None = None, head: str = "linear",
                     head_hidden: int = 512, head_dropout: float = 0.0, drop_rate: float = 0.0,
                     drop_path_rate: float = 0.0, drop_block_rate: float = 0.0, activation: str | None = None,
                     stem_stride: int = 1) -> nn.Module:
    """timm's `timm_name` with a 32x32 stem and a linear or MLP head of `num_classes` outputs, `weights` loaded."""
    timm = _timm()
    _check_name(timm, timm_name)
    _check_head(head, head_dropout, stem_stride)
    options: dict[str, Any] = {"num_classes": num_classes, "drop_rate": drop_rate, "drop_path_rate": drop_path_rate}
    if drop_block_rate:
        options["drop_block_rate"] = drop_block_rate
    if activation:
        options["act_layer"] = _activation_layer(timm, activation)
    model = _create(timm, timm_name, options)
    cfg = model.pretrained_cfg
    source = state = None
    if weights is not None:
        source = resolve_weights_file(str(weights), timm_name, cfg.get("hf_hub_id"))
        # Renaming may consult the original network's shapes, so it runs before the stem changes.
        state = to_timm_names(read_state_dict(source), model)
    stem = rebuild_stem(model, stem_stride)
    classifier = cfg["classifier"]
    if head == "mlp":
        act = timm.layers.create_act_layer(activation or "relu")
        in_features = model.get_submodule(classifier).in_features
        _replace(model, classifier, mlp_head(in_features, head_hidden, num_classes, act, head_dropout))
    if state is not None:
        load_backbone_weights(model, state, stem_key=f"{stem}.weight", classifier=classifier, removed=("maxpool.",),
                              source=str(source), model_name=PREFIX + timm_name)
        # Weights trained by cifarlab carry the statistics they were trained with; timm's carry theirs in the config.
        mean, std = recorded_normalisation(source) or (cfg["mean"], cfg["std"])
        model.input_config = InputConfig(mean=tuple(mean), std=tuple(std))
    else:
        model.input_config = InputConfig()  # random weights: the training data's own statistics
    return model


def timm_constructor(timm_name: str) -> Callable[..., nn.Module]:
    """The registry's constructor for `timm/<timm_name>`."""

    def constructor(num_classes: int = 10, **options: Any) -> nn.Module:
        return build_timm_cifar(timm_name, num_classes=num_classes, **options)

    constructor.__name__ = constructor.__qualname__ = PREFIX + timm_name
    constructor.__doc__ = f"timm {timm_name} with a 32x32 stem (see cifarlab.models.timm_cifar)."
    return constructor


register_prefix(PREFIX, timm_constructor)

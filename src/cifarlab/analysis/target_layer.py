"""Which layer Grad-CAM explains: the last spatial feature map of a model, by family or by tracing.

Grad-CAM weighs the channels of one feature map by the gradient of a class score. The map must
still be spatial (more than 1x1) and as late as possible, where features are most semantic:
the last convolutional stage, after its normalisation and activation where the model has them.
"""

from __future__ import annotations

import torch
from torch import nn

from cifarlab.errors import CifarlabError
from cifarlab.evaluation.predict import eval_mode

# Family -> path of its last spatial feature map. Families not listed (VGG, whose last stage
# pools to 1x1 on 32x32 images, and any other model) are traced by `traced_target_layer`.
FAMILY_LAYERS = {
    "StemStagesHead": "stages",  # ResNet, PreAct-ResNet, ResNeXt, DPN
    "WideResNet": "final",  # the BN-ReLU after the last stage
    "DenseNet": "features",  # ends with the final BN-ReLU
    "DLA": "trees",
    "ResNet9": "layer3",
    "ResNetV2": "head.relu",  # BiT: pre-activation, so the head's GN-ReLU is the last feature map
    "LeNet": "features",
    "AirbenchNet": "groups",
}


def _family_layer(model: nn.Module) -> str | None:
    for cls in type(model).__mro__:
        if cls.__name__ in FAMILY_LAYERS:
            return FAMILY_LAYERS[cls.__name__]
    feature_info = getattr(model, "feature_info", None)  # timm models list their feature maps
    if feature_info is not None:
        try:
            return feature_info[-1]["module"]
        except (TypeError, KeyError, IndexError):
            return None
    return None


def find_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule of `model` called `name` (as in `named_modules`), or a CifarlabError listing some names."""
    modules = dict(model.named_modules())
    if name not in modules or name == "":
        spatial = [n for n, m in modules.items() if n and isinstance(m, (nn.Conv2d, nn.Sequential))]
        raise CifarlabError(f"the model has no layer {name!r}; pass one of its layer names, e.g. "
                            f"{', '.join(spatial[-6:])}")
    return modules[name]


def traced_target_layer(model: nn.Module, example: torch.Tensor) -> str:
    """Name of the last module to finish whose output is a spatial (N, C, H, W) map with H*W > 1,
    once a convolution has run: the last conv stage's output, before global pooling.

    `example` is one preprocessed input batch; the forward pass runs without gradients.
    """
    finished: list[str] = []
    seen_conv = False
    names = {module: name for name, module in model.named_modules() if name}

    def record(module: nn.Module, inputs, output) -> None:
        nonlocal seen_conv
        seen_conv = seen_conv or isinstance(module, nn.Conv2d)
        if seen_conv and isinstance(output, torch.Tensor) and output.ndim == 4 and output.shape[-2:].numel() > 1:
            finished.append(names[module])

    handles = [module.register_forward_hook(record) for module in names]
    try:
        with eval_mode(model), torch.no_grad():  # eval mode: tracing must not move BatchNorm statistics
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    if not finished:
        raise CifarlabError("found no convolutional feature map with more than 1x1 positions to explain; "
                            "pass the layer to explain with target_layer= (--layer NAME)")
    return finished[-1]


def target_layer_name(model: nn.Module, example: torch.Tensor) -> str:
    """The layer Grad-CAM explains by default: the family's own choice, else the traced one."""
    name = _family_layer(model)
    if name is not None and name in dict(model.named_modules()):
        return name
    return traced_target_layer(model, example)

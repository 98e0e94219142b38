"""Imports every model family so that each registers its constructors."""

# One family per module; add a new family here.
from cifarlab.models import (
    airbench,  # noqa: F401
    bit,  # noqa: F401
    convnet,  # noqa: F401
    densenet,  # noqa: F401
    dla,  # noqa: F401
    dpn,  # noqa: F401
    efficientnet,  # noqa: F401
    googlenet,  # noqa: F401
    lenet,  # noqa: F401
    mobilenet,  # noqa: F401
    mobilenet_v2,  # noqa: F401
    pnasnet,  # noqa: F401
    preact_resnet,  # noqa: F401
    regnet,  # noqa: F401
    resnet,  # noqa: F401
    resnet9,  # noqa: F401
    resnext,  # noqa: F401
    senet,  # noqa: F401
    shufflenet,  # noqa: F401
    shufflenet_v2,  # noqa: F401
    timm_cifar,  # noqa: F401  (timm/<name>; timm itself is imported only when one is built)
    vgg,  # noqa: F401
    vgg_a,  # noqa: F401
    wrn,  # noqa: F401
)

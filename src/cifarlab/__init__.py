"""cifarlab: image-classification experiments on CIFAR-scale data."""

__version__ = "0.1.0"

from cifarlab.errors import CifarlabError

__all__ = ["CifarlabError", "__version__"]

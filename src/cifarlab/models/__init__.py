"""Model registry: `create(name, num_classes, **options)` and `names()`."""

from cifarlab.models.registry import create, names, register_model

__all__ = ["create", "names", "register_model"]

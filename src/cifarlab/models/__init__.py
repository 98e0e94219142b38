"""Model registry: `create(name, num_classes, weights, **options)`, `names()`, and what each model expects as input."""

from cifarlab.models.catalogue import create, names
from cifarlab.models.input_config import InputConfig, eval_geometry
from cifarlab.models.pretrained import model_for_weights
from cifarlab.models.registry import register_model

__all__ = ["InputConfig", "create", "eval_geometry", "model_for_weights", "names", "register_model"]

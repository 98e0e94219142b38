"""cifarlab.config: the typed recipe and its loader (layered YAML + command-line overrides)."""

from cifarlab.config.loader import (
    load_recipe,
    recipe_from_dict,
    recipe_to_dict,
    recipe_to_yaml,
    save_recipe,
)
from cifarlab.config.recipe import Recipe

__all__ = ["Recipe", "load_recipe", "recipe_from_dict", "recipe_to_dict", "recipe_to_yaml", "save_recipe"]

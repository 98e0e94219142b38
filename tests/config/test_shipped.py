"""Shipped recipes: found by name from any folder, `configs/` in a checkout is the same files, one line each."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cifarlab.config import load_recipe
from cifarlab.config.shipped import RECIPES_DIR, recipe_description, resolve_recipe, shipped_recipes
from cifarlab.errors import CifarlabError

CHECKOUT = Path(__file__).resolve().parents[2]


def test_configs_in_the_checkout_is_a_relative_link_to_the_shipped_recipes():
    link = CHECKOUT / "configs"
    assert link.is_symlink() and not os.path.isabs(os.readlink(link))
    assert link.resolve() == RECIPES_DIR
    assert sorted(p.name for p in (link / "fdu").iterdir()) == sorted(p.name for p in (RECIPES_DIR / "fdu").iterdir())


def test_a_shipped_name_loads_the_same_recipe_as_its_checkout_path_from_another_folder(tmp_path, monkeypatch):
    by_path = {name: load_recipe(CHECKOUT / "configs" / f"{name}.yaml") for name in ("quick", "fdu/resnet18")}
    monkeypatch.chdir(tmp_path)  # no configs/ here
    for name, recipe in by_path.items():
        assert load_recipe(name) == recipe
        assert load_recipe(f"{name}.yaml") == recipe
        assert load_recipe(f"configs/{name}.yaml") == recipe  # README commands work outside a checkout
    assert load_recipe("quick").model.name == "airbench94"  # its `extends: fast94.yaml` resolved
    assert load_recipe("fdu/resnet18").schedule.name == "plateau"  # its `extends: base.yaml` resolved


def test_a_file_in_the_working_folder_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("quick.yaml").write_text("name: mine\nseed: 3\n")
    assert load_recipe("quick.yaml").name == "mine"
    assert load_recipe("quick").name == "quick"  # no file called `quick`: the shipped one


def test_a_recipe_of_ones_own_extends_a_shipped_one_by_name_and_a_file_beside_it_comes_first(tmp_path):
    mine = tmp_path / "mine.yaml"
    for parent in ("fast94.yaml", "fast94", "configs/fast94.yaml"):
        mine.write_text(f"extends: {parent}\nname: mine\ntrain:\n  epochs: 2\n")
        recipe = load_recipe(mine)
        assert recipe.name == "mine" and recipe.train.epochs == 2 and recipe.model.name == "airbench94"
    (tmp_path / "fast94.yaml").write_text("name: local\nseed: 7\n")
    mine.write_text("extends: fast94.yaml\n")
    assert load_recipe(mine).seed == 7 and load_recipe(mine).model.name != "airbench94"
    mine.write_text("extends: fast95.yaml\n")
    with pytest.raises(CifarlabError, match="fast95.yaml' not found, and no shipped recipe has that name"):
        load_recipe(mine)


def test_unknown_name_lists_the_closest_names_and_the_recipes_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CifarlabError) as info:
        resolve_recipe("fdu/resnet_18")
    message = str(info.value)
    assert "fdu/resnet_18" in message and "fdu/resnet18" in message and "cifarlab recipes" in message


def test_every_shipped_recipe_has_a_one_line_description_of_its_own():
    recipes = shipped_recipes()
    assert {"quick", "fast94", "fdu/base", "fdu/resnet18", "bit_fewshot"} <= set(recipes)
    descriptions = {name: recipe_description(path) for name, path in recipes.items()}
    assert all(text and "\n" not in text for text in descriptions.values()), descriptions
    assert descriptions["quick"] != descriptions["fast94"]  # a child's line is not inherited from its parent
    assert load_recipe("quick").description == descriptions["quick"]


def test_description_falls_back_to_the_first_comment_line(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("# A recipe about cats.\n# More words.\nname: cats\n")
    assert recipe_description(path) == "A recipe about cats."

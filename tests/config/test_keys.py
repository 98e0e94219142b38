"""Recipe keys: every field carries help, and `recipe_keys` lists type, default and help, dotted."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from cifarlab.config.keys import recipe_keys
from cifarlab.config.recipe import Recipe
from cifarlab.errors import CifarlabError


def _leaf_fields(cls, prefix=""):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _leaf_fields(hints[f.name], f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", f


def test_every_recipe_field_has_one_line_of_help():
    missing = [name for name, f in _leaf_fields(Recipe) if not f.metadata.get("help")]
    assert missing == [], f"give these fields help= metadata: {missing}"
    assert all("\n" not in f.metadata["help"] for _, f in _leaf_fields(Recipe))


def test_keys_list_every_leaf_field_dotted_with_default_and_what_it_accepts():
    keys = {key.name: key for key in recipe_keys()}
    assert set(keys) == {name for name, _ in _leaf_fields(Recipe)}
    assert keys["optim.lr"].default == "0.1" and keys["optim.lr"].accepts == "a number or 'find'"
    assert keys["optim.momentum"].accepts == "a number between 0 and 1"  # bounds kept
    assert keys["optim.betas"].default == "[0.9, 0.999]"
    assert keys["model.options"].default == "{}" and keys["data.root"].default == "null"
    assert keys["train.precision"].accepts == "one of fp32, bf16, fp16, auto"


def test_keys_of_one_section_or_one_key():
    assert {k.name.split(".")[0] for k in recipe_keys("optim")} == {"optim"}
    assert [k.name for k in recipe_keys("optim.lr")] == ["optim.lr"]


def test_unknown_section_suggests_the_closest_and_lists_the_sections():
    with pytest.raises(CifarlabError) as info:
        recipe_keys("optm")
    assert "'optim'" in str(info.value) and "schedule" in str(info.value)

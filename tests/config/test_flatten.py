"""One recipe flatten and diff: resume, sweeps, lockstep studies and the trackers name an edit alike."""

from dataclasses import replace

import pytest

from cifarlab.config import load_recipe, recipe_from_dict, recipe_to_yaml
from cifarlab.config.flatten import differing_keys, flatten, recipe_values, settings_digest, without
from cifarlab.errors import CifarlabError
from cifarlab.studies.lockstep import recipe_differences
from cifarlab.sweeps.sweep_point import check_same_recipe
from cifarlab.training.loop import changed_keys, training_values
from cifarlab.training.sinks.reported import recipe_params

BASE = {"name": "flat", "model": {"name": "airbench94", "options": {"widths": [8, 16, 16]}},
        "train": {"device": "cpu"}}


def _widened(recipe):
    return replace(recipe, model=replace(recipe.model, options={"widths": [8, 16, 32]}))


def test_resume_sweep_and_lockstep_name_a_model_options_edit_the_same_way(tmp_path):
    recipe = recipe_from_dict(BASE, source="test")
    edited = _widened(recipe)
    assert changed_keys(training_values(recipe), edited) == ["model.options.widths"]
    assert recipe_differences(recipe, edited) == ["model.options.widths"]
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "recipe.yaml").write_text(recipe_to_yaml(recipe))
    check_same_recipe(load_recipe(run_dir / "recipe.yaml"), run_dir)  # the same recipe: no complaint
    with pytest.raises(CifarlabError, match=r"differs in model\.options\.widths"):
        check_same_recipe(edited, run_dir)
    assert recipe_params(edited)["model.options.widths"] == "[8, 16, 32]"


def test_an_older_checkpoint_with_options_as_one_mapping_resumes_unchanged():
    recipe = recipe_from_dict(BASE, source="test")
    older = {key: value for key, value in training_values(recipe).items() if not key.startswith("model.options.")}
    older["model.options"] = {"widths": [8, 16, 16]}
    assert changed_keys(older, recipe) == []
    assert changed_keys(older, _widened(recipe)) == ["model.options.widths"]


def test_flatten_descends_every_mapping_and_empty_options_are_unset():
    assert flatten({"a": {"b": {"c": 1}, "d": {}}, "e": [1]}) == {"a.b.c": 1, "e": [1]}
    assert differing_keys({"model": {"options": {}}}, {}) == []
    assert differing_keys({"x": 1}, {"y": None}) == ["x", "y"]
    assert differing_keys({"log": {"sinks": ["a"]}, "seed": 1}, {"log": {"sinks": ["b"]}, "seed": 2}, ignore=["log"]) == ["seed"]
    assert "log.sinks" not in without(recipe_values(recipe_from_dict(BASE, source="test")), ["log"])


def test_a_key_added_after_a_checkpoint_is_no_change_while_it_keeps_its_default():
    recipe = recipe_from_dict(BASE, source="test")
    older = {key: value for key, value in training_values(recipe).items() if key != "augment.flip_p"}
    assert changed_keys(older, recipe) == []
    flipped = replace(recipe, augment=replace(recipe.augment, flip="random", flip_p=0.25))
    assert "augment.flip_p" in changed_keys(older, flipped)


def test_the_settings_digest_ignores_what_names_a_run_and_sees_every_training_value_however_it_was_set(tmp_path):
    recipe = recipe_from_dict(BASE, source="test")
    renamed = replace(recipe, name="other", seed=3, out_dir=str(tmp_path), description="a second seed",
                      train=replace(recipe.train, device="cuda", threads=1))
    assert settings_digest(renamed) == settings_digest(recipe)
    assert settings_digest(_widened(recipe)) != settings_digest(recipe)
    # A value set by an override digests as the same value written in the file.
    base_file = tmp_path / "base.yaml"
    base_file.write_text(recipe_to_yaml(recipe))
    longer_file = tmp_path / "longer.yaml"
    longer_file.write_text(recipe_to_yaml(replace(recipe, train=replace(recipe.train, epochs=7))))
    by_override = load_recipe(base_file, ["train.epochs=7"])
    assert settings_digest(by_override) == settings_digest(load_recipe(longer_file))
    assert settings_digest(by_override) != settings_digest(load_recipe(base_file))


def test_the_settings_digest_ignores_logging_like_resume_but_keeps_evaluation_which_changes_a_score():
    recipe = recipe_from_dict(BASE, source="test")
    logged = replace(recipe, log=replace(recipe.log, sinks=["console", "csv"], project="another"))
    assert settings_digest(logged) == settings_digest(recipe)
    assert training_values(logged) == training_values(recipe)
    with_tta = replace(recipe, eval=replace(recipe.eval, tta="flip"))
    assert settings_digest(with_tta) != settings_digest(recipe)
    assert training_values(with_tta) == training_values(recipe)  # evaluation changes no trained weight

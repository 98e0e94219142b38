"""Recipe loading: layered YAML, deep merge, command-line overrides, validation messages, round trip."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cifarlab.config import Recipe, load_recipe, recipe_from_dict, recipe_to_dict, recipe_to_yaml, shipped
from cifarlab.config.loader import recipe_files, save_recipe
from cifarlab.config.shipped import RECIPES_DIR
from cifarlab.errors import CifarlabError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def empty(tmp_path) -> Path:
    return write(tmp_path / "empty.yaml", "")


def error_of(path, overrides=()) -> str:
    with pytest.raises(CifarlabError) as info:
        load_recipe(path, overrides)
    return str(info.value)


# ---------------------------------------------------------------- layering


def test_three_level_chain_resolves_paths_relative_to_each_file(tmp_path):
    write(tmp_path / "base" / "root.yaml", "seed: 1\noptim: {lr: 0.2, momentum: 0.8}\n")
    write(tmp_path / "base" / "mid.yaml", "extends: root.yaml\nseed: 2\noptim: {lr: 0.3}\n")
    leaf = write(tmp_path / "runs" / "leaf.yaml", "extends: ../base/mid.yaml\nname: leaf\n")
    recipe = load_recipe(leaf)
    assert (recipe.name, recipe.seed, recipe.optim.lr, recipe.optim.momentum) == ("leaf", 2, 0.3, 0.8)


def test_extends_list_applies_parents_in_order_then_the_file(tmp_path):
    write(tmp_path / "a.yaml", "seed: 1\ntrain: {epochs: 3}\n")
    write(tmp_path / "b.yaml", "seed: 2\n")
    leaf = write(tmp_path / "leaf.yaml", "extends: [a.yaml, b.yaml]\ntrain: {batch_size: 64}\n")
    recipe = load_recipe(leaf)
    assert (recipe.seed, recipe.train.epochs, recipe.train.batch_size) == (2, 3.0, 64)


def test_recipe_files_lists_every_file_a_recipe_builds_on_base_first(tmp_path):
    write(tmp_path / "a.yaml", "seed: 1\n")
    write(tmp_path / "sub" / "b.yaml", "extends: ../a.yaml\n")
    leaf = write(tmp_path / "leaf.yaml", "extends: [sub/b.yaml, a.yaml]\n")
    assert [p.relative_to(tmp_path).as_posix() for p in recipe_files(leaf)] == [
        "a.yaml", "sub/b.yaml", "a.yaml", "leaf.yaml"]
    assert [p.stem for p in recipe_files("quick")] == ["fast94", "fast94_muon", "quick"]  # a shipped name


def test_deep_merge_merges_mappings_and_replaces_lists_and_scalars(tmp_path):
    write(tmp_path / "base.yaml", """\
        model: {name: resnet9, options: {dropout: 0.1, width: 64}}
        schedule: {milestones: [10, 20, 30], gamma: 0.2}
    """)
    leaf = write(tmp_path / "leaf.yaml", """\
        extends: base.yaml
        model: {options: {dropout: 0.3}}
        schedule: {milestones: [5]}
        augment:
    """)
    recipe = load_recipe(leaf)
    assert recipe.model.name == "resnet9"
    assert recipe.model.options == {"dropout": 0.3, "width": 64}
    assert recipe.schedule.milestones == [5]
    assert recipe.schedule.gamma == 0.2
    assert recipe.augment == Recipe().augment  # an empty section changes nothing


def test_an_empty_mapping_override_clears_the_options_a_file_set(tmp_path):
    leaf = write(tmp_path / "leaf.yaml", "model: {name: airbench94, options: {width_multiplier: 0.5}}\n")
    assert load_recipe(leaf).model.options == {"width_multiplier": 0.5}
    cleared = load_recipe(leaf, ["model.options={}"])
    assert cleared.model.options == {} and cleared.model.name == "airbench94"
    assert load_recipe(leaf, ["model.options={}", "model.options.depth=2"]).model.options == {"depth": 2}


def test_an_empty_mapping_in_a_child_file_clears_the_parents_mapping(tmp_path):
    write(tmp_path / "base.yaml", "model: {options: {dropout: 0.1}}\ntrain: {epochs: 3}\n")
    leaf = write(tmp_path / "leaf.yaml", "extends: base.yaml\nmodel: {options: {}}\ntrain: {}\n")
    recipe = load_recipe(leaf)
    assert recipe.model.options == {}
    assert recipe.train == Recipe().train  # `{}` for a whole section: back to its defaults


def test_cycle_is_an_error_naming_the_files(tmp_path):
    write(tmp_path / "a.yaml", "extends: b.yaml\n")
    write(tmp_path / "b.yaml", "extends: c.yaml\n")
    write(tmp_path / "c.yaml", "extends: a.yaml\n")
    message = error_of(tmp_path / "a.yaml")
    assert "cycle" in message
    for name in ("a.yaml", "b.yaml", "c.yaml"):
        assert name in message


def test_a_recipe_file_that_is_not_utf8_is_one_message(tmp_path):
    (tmp_path / "latin1.yaml").write_bytes("name: r\u00e9sum\u00e9\n".encode("latin-1"))
    assert "is not UTF-8 text (byte 7); save it as UTF-8" in error_of(tmp_path / "latin1.yaml")


def test_shared_base_through_two_parents_is_not_a_cycle(tmp_path):
    write(tmp_path / "base.yaml", "seed: 7\n")
    write(tmp_path / "x.yaml", "extends: base.yaml\n")
    write(tmp_path / "y.yaml", "extends: base.yaml\n")
    assert load_recipe(write(tmp_path / "leaf.yaml", "extends: [x.yaml, y.yaml]\n")).seed == 7


def test_missing_file_is_an_error_naming_the_path(tmp_path):
    assert "nowhere.yaml" in error_of(tmp_path / "nowhere.yaml")


def test_missing_parent_is_an_error_naming_its_path(tmp_path):
    leaf = write(tmp_path / "leaf.yaml", "extends: gone/base.yaml\n")
    assert "gone/base.yaml" in error_of(leaf)


def test_key_written_twice_in_one_file_is_an_error(tmp_path):
    recipe = write(tmp_path / "twice.yaml", "seed: 1\nseed: 2\n")
    assert "seed" in error_of(recipe) and "twice" in error_of(recipe)


# ---------------------------------------------------------------- overrides


def test_override_of_each_type_lands_converted(empty):
    recipe = load_recipe(empty, [
        "train.epochs=2",
        "train.batch_size=256",
        "optim.lr=0.05",
        "optim.weight_decay=5e-4",
        "optim.nesterov=true",
        "optim.name=adamw",
        "optim.betas=[0.9,0.99]",
        "data.examples_per_class=5",
        "augment.cutout=8",
        "model.options.dropout=0.2",
        "schedule.milestones=[3, 6]",
    ])
    assert recipe.train.epochs == 2.0 and isinstance(recipe.train.epochs, float)
    assert recipe.train.batch_size == 256 and isinstance(recipe.train.batch_size, int)
    assert recipe.optim.lr == 0.05
    assert recipe.optim.weight_decay == pytest.approx(5e-4) and isinstance(recipe.optim.weight_decay, float)
    assert recipe.optim.nesterov is True
    assert recipe.optim.name == "adamw"
    assert recipe.optim.betas == [0.9, 0.99]
    assert recipe.data.examples_per_class == 5
    assert recipe.augment.cutout == 8
    assert recipe.model.options == {"dropout": 0.2}
    assert recipe.schedule.milestones == [3, 6]


def test_override_null_clears_an_optional_field(tmp_path):
    recipe = write(tmp_path / "r.yaml", "data: {examples_per_class: 5}\ntrain: {grad_clip: 1.0}\n")
    loaded = load_recipe(recipe, ["data.examples_per_class=null", "train.grad_clip=null"])
    assert loaded.data.examples_per_class is None and loaded.train.grad_clip is None


def test_lr_accepts_a_number_or_find(empty):
    assert load_recipe(empty, ["optim.lr=find"]).optim.lr == "find"
    assert load_recipe(empty, ["optim.lr=3e-3"]).optim.lr == pytest.approx(3e-3)


def test_override_beats_every_file_layer(tmp_path):
    write(tmp_path / "base.yaml", "optim: {lr: 0.2}\n")
    leaf = write(tmp_path / "leaf.yaml", "extends: base.yaml\noptim: {lr: 0.3}\n")
    assert load_recipe(leaf, ["optim.lr=0.4"]).optim.lr == 0.4


def test_override_of_a_text_field_keeps_the_text_of_a_number(empty):
    recipe = load_recipe(empty, ["data.root=2024", "name=1e3"])
    assert (recipe.data.root, recipe.name) == ("2024", "1e3")


def test_override_without_equals_shows_the_expected_form(empty):
    message = error_of(empty, ["optim.lr"])
    assert "'optim.lr'" in message and "key=value" in message


def test_override_with_empty_key_part_is_an_error(empty):
    assert "key=value" in error_of(empty, ["optim..lr=0.1"])


# ---------------------------------------------------------------- validation


def test_unknown_key_in_file_names_file_suggestion_and_valid_keys(tmp_path):
    recipe = write(tmp_path / "typo.yaml", "optim:\n  lrr: 0.1\n")
    message = error_of(recipe)
    assert "'optim.lrr'" in message
    assert str(recipe) in message
    assert "did you mean 'optim.lr'?" in message
    assert "weight_decay" in message and "betas" in message  # the valid keys of optim


def test_unknown_key_in_parent_file_names_the_parent(tmp_path):
    base = write(tmp_path / "base.yaml", "train: {epochz: 3}\n")
    leaf = write(tmp_path / "leaf.yaml", "extends: base.yaml\nseed: 1\n")
    message = error_of(leaf)
    assert str(base) in message and "did you mean 'train.epochs'?" in message


def test_unknown_key_in_override_names_the_command_line(empty):
    message = error_of(empty, ["train.batchsize=64"])
    assert "'train.batchsize'" in message
    assert "command line" in message
    assert "did you mean 'train.batch_size'?" in message


def test_unknown_top_level_key_lists_the_sections(empty):
    message = error_of(empty, ["optimizer.lr=0.1"])
    assert "did you mean 'optim'?" in message and "schedule" in message


def test_wrong_type_names_key_value_and_what_it_accepts(empty):
    message = error_of(empty, ["train.batch_size=abc"])
    assert "train.batch_size must be an integer >= 1, got 'abc'" in message


def test_bool_is_not_accepted_as_an_integer(tmp_path):
    message = error_of(write(tmp_path / "r.yaml", "train: {batch_size: true}\n"))
    assert "train.batch_size must be an integer" in message and "got true" in message


def test_integer_is_not_accepted_as_a_bool(empty):
    assert "train.compile must be true or false, got 1" in error_of(empty, ["train.compile=1"])


def test_float_is_not_accepted_as_an_integer(empty):
    assert "train.batch_size must be an integer" in error_of(empty, ["train.batch_size=64.5"])


def test_scientific_notation_in_yaml_file_is_a_float(tmp_path):
    recipe = load_recipe(write(tmp_path / "r.yaml", "optim: {weight_decay: 5e-4, eps: 1E-6, betas: [0.9, 1e-1]}\n"))
    assert recipe.optim.weight_decay == pytest.approx(5e-4)
    assert recipe.optim.eps == pytest.approx(1e-6)
    assert recipe.optim.betas == [0.9, pytest.approx(0.1)]


def test_value_below_min_is_an_error_with_the_range(empty):
    message = error_of(empty, ["augment.cutout=-1"])
    assert "augment.cutout must be an integer between 0 and 32, got -1" in message


def test_value_above_max_is_an_error_with_the_range(tmp_path):
    message = error_of(write(tmp_path / "r.yaml", "train: {label_smoothing: 1.5}\n"))
    assert "train.label_smoothing must be a number between 0 and 1, got 1.5" in message


def test_optional_bounded_field_names_null_as_accepted(empty):
    message = error_of(empty, ["data.examples_per_class=0"])
    assert "data.examples_per_class must be an integer >= 1 or null, got 0" in message


def test_bad_literal_lists_the_words_and_suggests_the_closest(empty):
    message = error_of(empty, ["schedule.name=cosin"])
    assert "schedule.name must be one of constant, onecycle, cosine" in message
    assert "got 'cosin' (did you mean 'cosine'?)" in message


def test_bad_lr_word_suggests_find(empty):
    message = error_of(empty, ["optim.lr=fnd"])
    assert "optim.lr must be a number or 'find', got 'fnd' (did you mean 'find'?)" in message


def test_list_with_a_bad_item_is_an_error(empty):
    assert "optim.betas must be a list of numbers" in error_of(empty, ["optim.betas=[0.9,x]"])


def test_section_that_is_not_a_mapping_is_an_error(empty):
    message = error_of(empty, ["optim=5"])
    assert "optim must be a mapping" in message and "lr" in message


def test_null_for_a_required_field_is_an_error(empty):
    assert "train.batch_size must be an integer >= 1, got null" in error_of(empty, ["train.batch_size=null"])


def test_recipe_from_dict_names_its_source():
    with pytest.raises(CifarlabError, match="sweep row 3"):
        recipe_from_dict({"seeed": 1}, source="sweep row 3")


# ---------------------------------------------------------------- round trip


def test_yaml_round_trip_gives_an_equal_recipe(tmp_path):
    write(tmp_path / "base.yaml", "optim: {name: adamw, weight_decay: 5e-4, betas: [0.9, 0.95]}\n")
    leaf = write(tmp_path / "leaf.yaml", "extends: base.yaml\nmodel: {options: {dropout: 0.2, act: relu}}\n")
    recipe = load_recipe(leaf, ["optim.lr=find", "data.examples_per_class=5", "train.epochs=2.5"])
    resolved = write(tmp_path / "resolved" / "recipe.yaml", recipe_to_yaml(recipe))
    assert "extends" not in resolved.read_text()
    assert load_recipe(resolved) == recipe
    assert recipe_from_dict(recipe_to_dict(recipe)) == recipe


def test_save_recipe_writes_a_file_that_loads_back_equal(tmp_path):
    recipe = recipe_from_dict({"name": "saved", "schedule": {"name": "onecycle", "final_div_factor": 1e4}})
    save_recipe(recipe, tmp_path / "run" / "recipe.yaml")
    assert load_recipe(tmp_path / "run" / "recipe.yaml") == recipe
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["recipe.yaml"]  # no temporary left behind


# ---------------------------------------------------------------- shipped recipes


def shipped_recipes() -> list[Path]:
    return sorted(CONFIGS / path.relative_to(RECIPES_DIR) for path in shipped.shipped_recipes().values())


def test_configs_folder_holds_recipes():
    assert len(shipped_recipes()) >= 3


@pytest.mark.parametrize("path", shipped_recipes(), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_shipped_recipe_validates_and_round_trips(path):
    recipe = load_recipe(path)
    assert recipe_from_dict(recipe_to_dict(recipe)) == recipe

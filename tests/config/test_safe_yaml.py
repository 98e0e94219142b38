"""The bounded YAML reader: exact limits, the line it names, encodings, and one bounded formatter for values."""

from __future__ import annotations

import codecs
import os
import re

import pytest

from cifarlab.config.fields import SHOWN, show
from cifarlab.config.safe_yaml import MAX_BYTES, MAX_DEPTH, MAX_NODES, load_yaml_text, read_yaml_file, yaml_value
from cifarlab.errors import CifarlabError


def error_of(text: str) -> str:
    with pytest.raises(CifarlabError) as caught:
        load_yaml_text(text, "recipe file 'r.yaml'")
    message = str(caught.value)
    assert "\n" not in message and len(message) < 1000, message
    return message


def alias_chain(levels: int, width: int = 9) -> str:
    """`levels` anchored lists, each holding `width` aliases of the one before: width**levels values in all."""
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_values_up_to_the_node_limit_load_and_one_more_is_refused():
    assert len(load_yaml_text(str(list(range(MAX_NODES - 1))), "x")) == MAX_NODES - 1  # the list itself is one
    message = error_of(str(list(range(MAX_NODES))))
    assert "recipe file 'r.yaml', line 1" in message and f"{MAX_NODES:,} values" in message


def test_nesting_up_to_the_depth_limit_loads_and_one_more_is_refused():
    assert load_yaml_text("[" * MAX_DEPTH + "]" * MAX_DEPTH, "x") is not None
    message = error_of("\n\n" + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    assert "line 3" in message and f"more than {MAX_DEPTH} deep" in message


def test_deep_nesting_stops_at_the_limit_instead_of_overflowing_the_stack():
    assert f"more than {MAX_DEPTH} deep" in error_of("a: " + "[" * 20000 + "]" * 20000)


def test_aliases_are_counted_expanded_and_the_line_where_they_pass_the_limit_is_named():
    assert load_yaml_text(alias_chain(4), "x")["a3"][8][8][8][8] == "lol"  # 9**4 = 6,561 values: fine
    message = error_of(alias_chain(9) + "data: {dataset: *a8}\n")
    # 9**5 passes 10,000 at the fifth list, written on line 5.
    assert "line 5" in message and f"expand to more than {MAX_NODES:,} values" in message


def test_aliases_are_counted_through_merge_keys_too():
    text = alias_chain(4) + "m1: &m1 {x: *a3, y: *a3}\nm2: {<<: *m1, z: 1}\n"
    assert "expand to more than" in error_of(text)


def test_aliases_that_multiply_text_are_refused():
    text = f"s: &s {'x' * 300_000}\nall: [*s, *s, *s, *s]\n"
    assert f"more than {MAX_BYTES:,} characters" in error_of(text)


def test_aliases_that_deepen_past_the_limit_are_refused():
    deep = "[" * 30 + "]" * 30
    assert "once its aliases are expanded" in error_of(f"a: &a {deep}\nb: [[[[[[[[[[[[[[[[[[[[[[*a]]]]]]]]]]]]]]]]]]]]]]\n")


def test_an_alias_inside_the_value_it_names_is_refused():
    assert "never ends" in error_of("a: &a [1, *a]\n")


def test_python_tags_stay_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    message = error_of(f"a: !!python/object/apply:os.system ['touch {marker}']\n")
    assert "not valid YAML: line 1, column 4" in message and "python/object/apply" in message
    assert not marker.exists()


def test_a_key_written_twice_is_refused_with_its_line():
    assert "line 3, column 1" in error_of("a: 1\nb: 2\na: 3\n") and "'a' appears twice" in error_of("a: 1\na: 3\n")


def test_keys_yaml_cannot_hash_are_one_message():
    assert "unhashable key" in error_of("? [1, 2]\n: x\n")


def test_values_python_cannot_build_name_their_line():
    assert "line 2, column 4: not a valid timestamp: month must be in 1..12 (quote" in error_of("a: 1\nb: 2024-13-45\n")
    assert "line 1, column 4: not a valid int: Exceeds" in error_of("a: " + "1" * 5000 + "\n")  # too many digits
    assert "line 2, column 4: not a valid timestamp: invalid" in error_of("a: 1\nb: !!timestamp x\n")
    for text in ("a: !!bool maybe\n", "a: !!int\n", "a: !!set [1]\n", "a: !!map [1]\n"):
        assert "line 1" in error_of(text)


def test_yaml_errors_are_one_line_without_pyyaml_s_snippet():
    message = error_of("a: [1, 2\nb: 3\n")
    assert message.startswith("recipe file 'r.yaml' is not valid YAML: line ") and "^" not in message


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_unicode_files_with_a_byte_order_mark_are_read(tmp_path, encoding):
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}.get(encoding, b"")
    path = tmp_path / "r.yaml"
    path.write_bytes(bom + "description: café ü\n".encode(encoding))
    assert read_yaml_file(path) == {"description": "café ü"}


@pytest.mark.parametrize("data, expected", [
    ("description: café\n".encode("latin-1"), "is not UTF-8 text (byte 16)"),
    # Without a byte-order mark UTF-16 is UTF-8 with NUL bytes as far as anyone can tell.
    ("a: 1\n".encode("utf-16-le"), "is not valid YAML: character 2 (#x0000): special characters are not allowed"),
    (codecs.BOM_UTF16_LE + b"a\x00:\x00 \x00\x00\xd8", "UTF-16 byte-order mark but is not UTF-16 text"),
    (b"a: 1\x00\n", "is not valid YAML: character 5 (#x0000): special characters are not allowed"),
])
def test_other_bytes_are_one_message(tmp_path, data, expected):
    path = tmp_path / "r.yaml"
    path.write_bytes(data)
    with pytest.raises(CifarlabError, match=re.escape(expected)):
        read_yaml_file(path)


def test_a_file_over_the_byte_limit_is_refused_without_reading_it_all(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"a: " + b"x" * MAX_BYTES)
    with pytest.raises(CifarlabError, match=f"larger than {MAX_BYTES:,} bytes"):
        read_yaml_file(path)


@pytest.mark.parametrize("name", ["folder", "pipe", "/dev/zero"])
def test_anything_but_a_regular_file_is_one_message_and_never_read(tmp_path, name):
    path = tmp_path / name
    if name == "folder":
        path.mkdir()
    elif name == "pipe":
        os.mkfifo(path)  # reading it would wait for a writer forever
    with pytest.raises(CifarlabError, match="is not a regular file"):
        read_yaml_file(path if name != "/dev/zero" else name)


def test_a_file_that_cannot_be_opened_is_one_message(tmp_path):
    with pytest.raises(CifarlabError, match="cannot read recipe file .*No such file"):
        read_yaml_file(tmp_path / "gone.yaml")


def test_command_line_values_are_bounded_but_plain_text_stays_text():
    assert yaml_value("[1, 2]", "x") == [1, 2]
    assert yaml_value("{unclosed", "x") == "{unclosed"
    assert yaml_value("2024-13-45", "x") == "2024-13-45"  # no date: the field's type check says what it wanted
    with pytest.raises(CifarlabError, match="deep"):
        yaml_value("[" * 100 + "]" * 100, "the command-line value of 'x'")


def test_show_is_bounded_however_large_the_value():
    chain = ["lol"] * 9
    for _ in range(8):
        chain = [chain] * 9  # 387 million values written out, as the alias bomb would make them
    for value in (chain, "x" * 10**6, 10**5000, {str(i): i for i in range(10**5)}, b"\0" * 10**6):
        assert len(show(value)) <= SHOWN
    assert show("abc") == "'abc'" and show(None) == "null" and show(True) == "true" and show("-1e-4") == "-1e-4"
    assert show("x" * 1000).endswith("x…'")

"""Read YAML that someone else wrote: plain values only, and never more than a recipe could need.

A YAML file can ask for far more than its own size: nine levels of nine aliases (a few hundred bytes)
stand for 387 million values once expanded, and 20,000 nested brackets overflow Python's stack. So
a document is first composed into YAML's node graph, counted while it is composed, and the graph
is checked with every alias expanded (counting, not copying) before a single Python value is built.
Only then does PyYAML's SafeLoader construct the values: tags that would run code
(`!!python/object`) stay refused, and a key written twice in one mapping is an error.

`read_yaml_file` is the reader for a YAML file a user gives cifarlab (a recipe and each file it
extends); `yaml_value` reads a value typed on the command line. Each refusal is one CifarlabError
naming the file, the line and the limit.
"""

from __future__ import annotations

import codecs
import collections.abc
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from cifarlab.config.fields import clip, show
from cifarlab.errors import CifarlabError

MAX_BYTES = 1_000_000  # a file, and all the text its aliases expand to; recipes are a few kB
MAX_NODES = 10_000  # values (scalars, lists, mappings) once every alias is expanded
MAX_DEPTH = 50  # lists and mappings nested in each other

# What PyYAML's constructors raise on a value its tag cannot make: `2024-13-45` as a date, an integer of
# 5,000 digits, `!!timestamp x`, `!!bool maybe`, `!!int` with nothing after it.
_BUILD_ERRORS = (ValueError, OverflowError, AttributeError, KeyError, IndexError, TypeError)
_TOO_DEEP = f"lists or mappings nest more than {MAX_DEPTH} deep once its aliases are expanded"
_UNICODE_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                 (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def read_yaml_file(path: str | os.PathLike, what: str = "recipe file") -> Any:
    """The values of the YAML file `path` (a `what`: "recipe file", "sweep file"), within the limits above."""
    where = f"{what} {show(str(path))}"
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a pipe would block the read, a device never end it
            raise CifarlabError(f"{where} is not a regular file (a folder, a pipe or a device); give a YAML file")
        with open(path, "rb") as stream:
            raw = stream.read(MAX_BYTES + 1)  # never more than the limit, however large the file
    except OSError as exc:
        raise CifarlabError(f"cannot read {where} ({exc.strerror or exc}); check the path") from None
    if len(raw) > MAX_BYTES:
        raise CifarlabError(f"{where} is larger than {MAX_BYTES:,} bytes, the most cifarlab reads as "
                            "a YAML file; a recipe is a few kB: remove what does not belong in it")
    return load_yaml_text(_decode(raw, where), where)


def load_yaml_text(text: str, where: str) -> Any:
    """The values of YAML `text` read from `where` ("recipe file 'a.yaml'"), within the limits above."""
    try:
        return _load(text, where)
    except yaml.YAMLError as exc:
        raise CifarlabError(f"{where} is not valid YAML: {_one_line(exc)}; fix that line") from None


def yaml_value(text: str, where: str) -> Any:
    """A command-line value read as YAML within the limits; text that is not valid YAML comes back as it is."""
    if len(text) > MAX_BYTES:
        raise CifarlabError(f"{where} is {len(text):,} characters long, more than the {MAX_BYTES:,} "
                            "cifarlab reads; give a shorter value")
    try:
        return _load(text, where)
    except yaml.YAMLError:
        return text


def _decode(raw: bytes, where: str) -> str:
    # Windows editors and PowerShell's `>` write UTF-16 with a byte-order mark: YAML allows it, so do we.
    for bom, encoding in _UNICODE_BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(encoding)
            except UnicodeDecodeError as exc:
                raise CifarlabError(f"{where} starts with a {encoding.upper()} byte-order mark but is not "
                                    f"{encoding.upper()} text (byte {exc.start}); save it as UTF-8") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CifarlabError(f"{where} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def _load(text: str, where: str) -> Any:
    loader = _BoundedLoader(text, where)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expanded(node, where)
        try:
            return loader.construct_document(node)
        except _BUILD_ERRORS as exc:  # a YAML error like any other: a command-line value stays text
            failed = loader.node or node
            reason = str(exc) if isinstance(exc, (ValueError, OverflowError)) else "invalid"
            raise yaml.constructor.ConstructorError(
                None, None, f"not a valid {failed.tag.rsplit(':', 1)[-1]}: {reason} (quote the value to keep it as text)",
                failed.start_mark) from None
    finally:
        loader.dispose()


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that stops composing past MAX_NODES or MAX_DEPTH and refuses a key written twice."""

    def __init__(self, text: str, where: str) -> None:
        super().__init__(text)
        self.where = where
        self.nodes = 0
        self.depth = 0
        self.node: yaml.nodes.Node | None = None  # the one being constructed, named when Python refuses it

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            return super().compose_node(parent, index)  # counted with the expanded graph
        mark = self.peek_event().start_mark
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _limit(self.where, mark, f"the file goes on past {MAX_NODES:,} values")
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _limit(self.where, mark, f"lists or mappings nest more than {MAX_DEPTH} deep")
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_object(self, node, deep=False):
        self.node = node
        return super().construct_object(node, deep=deep)

    def construct_mapping(self, node, deep=False):
        # YAML would keep the last of two equal keys silently; a recipe with both is a mistake.
        seen = set()
        for key_node, _ in node.value if isinstance(node, yaml.MappingNode) else ():  # `!!set [1]`: SafeLoader says
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, collections.abc.Hashable):
                break  # SafeLoader's own check says "found unhashable key" with its line
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {show(key)} appears twice in one mapping", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _check_expanded(root: yaml.nodes.Node, where: str) -> None:
    """Refuse a graph whose aliases expand past the limits; each node is counted once, however often it is used."""
    totals: dict[int, tuple[int, int, int]] = {}  # id(node) -> (values, characters, levels) expanded
    open_nodes: set[int] = set()

    def visit(node: yaml.nodes.Node, depth: int) -> tuple[int, int, int]:
        key = id(node)
        if key in open_nodes:
            raise _limit(where, node.start_mark, "an alias refers to the value it is inside, which never ends")
        if key not in totals:
            if depth > MAX_DEPTH:
                raise _limit(where, node.start_mark, _TOO_DEEP)
            open_nodes.add(key)
            totals[key] = _expanded(node, depth, visit, where)
            open_nodes.discard(key)
        values, chars, levels = totals[key]
        if depth + levels - 1 > MAX_DEPTH:
            raise _limit(where, node.start_mark, _TOO_DEEP)
        return totals[key]

    visit(root, 1)


def _expanded(node: yaml.nodes.Node, depth: int, visit: Callable, where: str) -> tuple[int, int, int]:
    if isinstance(node, yaml.ScalarNode):
        return 1, len(node.value), 1
    children = node.value if isinstance(node, yaml.SequenceNode) else [n for pair in node.value for n in pair]
    values, chars, levels = 1, 0, 1
    for child in children:
        child_values, child_chars, child_levels = visit(child, depth + 1)
        values, chars, levels = values + child_values, chars + child_chars, max(levels, child_levels + 1)
        if values > MAX_NODES:
            raise _limit(where, node.start_mark, f"the aliases here expand to more than {MAX_NODES:,} values")
        if chars > MAX_BYTES:
            raise _limit(where, node.start_mark, f"the aliases here expand to more than {MAX_BYTES:,} characters")
    return values, chars, levels


def _limit(where: str, mark: yaml.Mark, problem: str) -> CifarlabError:
    return CifarlabError(f"{where}, line {mark.line + 1}: {problem}, beyond what cifarlab reads from one YAML "
                         f"file (at most {MAX_NODES:,} values, {MAX_DEPTH} levels, {MAX_BYTES:,} bytes); "
                         "write the values out plainly, with fewer aliases and less nesting")


def _one_line(exc: yaml.YAMLError) -> str:
    """PyYAML's message without the quoted snippet and caret lines: the problem and where it is."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(part for part in (exc.context, exc.problem) if part)
        place = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        return place + clip(" ".join(problem.split()))
    if isinstance(exc, yaml.reader.ReaderError):
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return f"character {exc.position + 1} (#x{code:04x}): {clip(exc.reason)}"
    return clip(" ".join(str(exc).split()))


def read_mapping(path: Path, what: str) -> dict:
    """`read_yaml_file` of a file that must hold a mapping of keys (or nothing: an empty mapping)."""
    data = read_yaml_file(path, what)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CifarlabError(f"{what} {show(str(path))} must hold a mapping of keys, got {type(data).__name__}")
    return data

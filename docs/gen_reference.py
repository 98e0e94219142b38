"""The reference pages, made from the code at every build so they cannot drift from it.

mkdocs runs this file as a hook (`hooks:` in mkdocs.yml): `on_files` adds three pages that exist only in
the build, never in docs/:

- reference/keys.md: every recipe key with what it accepts, its default and its help, as `cifarlab keys`
  prints them;
- reference/cli.md: every verb's `--help`, as `cifarlab VERB --help` prints it at 100 columns;
- reference/api.md: one mkdocstrings block per public name of `cifarlab` (its lazy table), so the page
  follows the package when a module moves.

`python docs/gen_reference.py OUT_DIR` writes the three pages to a folder, to read them without a build.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from pathlib import Path

HELP_COLUMNS = "100"  # argparse wraps help to $COLUMNS: fixed, so the page is the same on every terminal
KEYS_PAGE = "reference/keys.md"
CLI_PAGE = "reference/cli.md"
API_PAGE = "reference/api.md"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell: pipes escaped, angle brackets outside code spans escaped."""
    parts = text.replace("|", "\\|").split("`")
    return "`".join(part if i % 2 else part.replace("<", "&lt;").replace(">", "&gt;") for i, part in enumerate(parts))


def _code(text: str) -> str:
    """An inline code span that survives backticks inside the value."""
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def keys_page() -> str:
    from cifarlab.config.keys import recipe_keys

    keys = recipe_keys()
    # Boosted in the site search: a search for a key's name leads to its own row before any guide that uses it.
    lines = ["---", "search:", "  boost: 3", "---", "", "# Recipe keys", "",
             "Every key a recipe may set, in the order `cifarlab keys` prints them, with what it accepts, its default",
             "and its help. This page is made from the code at every build of the site. Set a key in a recipe",
             "file, or on the command line with a dotted override (`cifarlab train quick optim.lr=0.2`);",
             "`cifarlab keys SECTION` prints one section in a terminal.", ""]
    section = None
    for key in keys:
        top = key.name.split(".")[0] if "." in key.name else "(top level)"
        if top != section:
            section = top
            lines += ["", f"## {section}", "", "| key | accepts | default | help |", "|---|---|---|---|"]
        lines.append(f"| {_code(key.name)} | {_cell(key.accepts)} | {_code(key.default)} | {_cell(key.help)} |")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def _help_width():
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def verb_helps() -> list[tuple[str, str]]:
    """(command, its --help text) for every verb, and for every action of a verb that has its own parser."""
    from cifarlab.cli import VERBS, build_parser

    helps = []
    with _help_width():
        verbs = _subparsers(build_parser())
        for verb in VERBS:
            helps.append((f"cifarlab {verb}", verbs[verb].format_help()))
            for action, parser in _subparsers(verbs[verb]).items():
                helps.append((f"cifarlab {verb} {action}", parser.format_help()))
    return helps


def cli_page() -> str:
    helps = verb_helps()
    lines = ["# Command line", "",
             "Every verb of `cifarlab` with its options and examples: the text `cifarlab VERB --help` prints,",
             "made from the argument parsers at every build of the site. `cifarlab --version` prints the version.", ""]
    lines += [f"- [`{command}`](#{_anchor(command)})" for command, _ in helps]
    for command, text in helps:
        level = "##" if command.count(" ") == 1 else "###"
        lines += ["", f"{level} {command}", "", "```text", text.rstrip(), "```"]
    return "\n".join(lines) + "\n"


def _anchor(heading: str) -> str:
    """The id mkdocs' toc extension gives a heading (lower case, spaces to dashes, other punctuation dropped)."""
    return re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", heading).strip().lower())


def public_names() -> list[tuple[str, str]]:
    """(public name, where it is defined) for `cifarlab.NAME`, from the package's own lazy table."""
    import cifarlab

    names = [("CifarlabError", "cifarlab.errors.CifarlabError")]
    names += [(name, f"{module}.{attribute}") for name, (module, attribute) in cifarlab._LAZY.items()]
    return names


def api_page() -> str:
    import cifarlab.api

    lines = ["# Python API", "",
             "`import cifarlab` gives the names below (each imported on first use, so the import is cheap).",
             "The page is made from their docstrings at every build of the site; the",
             "[Python API guide](../guides/python-api.md) shows them at work.", ""]
    names = public_names()
    # The API module's own helpers that the package does not re-export, under their full name.
    names += [(f"api.{name}", f"cifarlab.api.{name}") for name in cifarlab.api.__all__ if name not in dict(names)]
    for name, target in names:
        lines += [f"## cifarlab.{name}", "", f"::: {target}", ""]
    return "\n".join(lines)


def pages() -> dict[str, str]:
    return {KEYS_PAGE: keys_page(), CLI_PAGE: cli_page(), API_PAGE: api_page()}


def on_files(files, config):
    """mkdocs hook: add the generated pages to the build (they are never written into docs/)."""
    from mkdocs.structure.files import File

    for path, text in pages().items():
        files.append(File.generated(config, path, content=text))
    return files


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "reference-pages")
    for path, text in pages().items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_text(text)
        print(out / path)

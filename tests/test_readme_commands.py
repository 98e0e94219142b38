"""Every command line in the README's command blocks parses and names recipes, studies and sweeps that exist.

The commands themselves run for real in the tests of each verb; this checks the README's own spelling of
them, from a folder outside the checkout (as after `pip install`), so that a renamed option or recipe, or a
verb that resolves names differently from `cifarlab train`, cannot leave a documented command broken.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from cifarlab.cli import build_parser
from cifarlab.cli.words import is_override
from cifarlab.config import load_recipe
from cifarlab.studies.lockstep import read_study
from cifarlab.sweeps.grid_sweep import sweep_spec

README = Path(__file__).resolve().parents[1] / "README.md"
PLACEHOLDERS = ("OLD.pt", "RUN_A", "RUN_B")  # commands that name the reader's own files
VERB_MENTIONS = {"cifarlab sweep --launcher slurm"}


def readme_commands() -> list[str]:
    """The README's `cifarlab ...` commands: indented lines (trailing comments removed) and inline ones in
    backticks, less those with a placeholder (RUN, FILE, SECTION, `...`) for the reader to fill in."""
    text = README.read_text()
    commands = [re.sub(r"\s+#\s.*$", "", line.strip()) for line in text.splitlines()
                if line.startswith("    cifarlab ")]
    # Inline: `cifarlab VERB` alone (or `cifarlab sweep --launcher slurm`) names a verb in prose; a command has more.
    inline = [" ".join(match.split()) for match in re.findall(r"`(cifarlab [^`]+)`", text)]
    commands += [c for c in inline if len(c.split()) > 2 and c not in VERB_MENTIONS]
    placeholder = re.compile(r"\b[A-Z][A-Z_]+\b|\.\.\.|\[")
    return sorted({c for c in commands if not placeholder.search(c.replace("BiT-M-R50x1", ""))
                   and not any(word in c for word in PLACEHOLDERS)})


def test_the_readme_has_command_blocks():
    commands = readme_commands()
    assert len(commands) > 30 and "cifarlab train configs/quick.yaml" in commands


@pytest.mark.parametrize("command", readme_commands())
def test_a_readme_command_parses_and_its_recipe_resolves(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outside the checkout: `configs/...` must resolve to the shipped files
    argv = shlex.split(command)[1:]
    try:
        args, extra = build_parser().parse_known_args(argv)
    except SystemExit as exit_:
        assert exit_.code == 0 and argv == ["--version"], command
        return
    assert all(is_override(word) for word in extra), command
    overrides = list(getattr(args, "overrides", []) or []) + extra
    if args.verb == "train" and args.recipe:
        load_recipe(args.recipe, overrides)
    elif args.verb == "sweep":
        spec = sweep_spec(args.recipe, args.grid or [], overrides)
        assert spec.recipe.is_file()
    elif args.verb == "fewshot":
        load_recipe(args.recipe or "bit_fewshot", overrides)
    elif args.verb == "compare":
        read_study(args.study)
    elif args.verb == "data" and args.action == "augment-grid":
        load_recipe(args.name, overrides, check_machine=False)

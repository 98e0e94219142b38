"""The README stays a short manual whose commands, links and figures all work.

Its shell and Python blocks and inline commands are checked with every docs page in tests/docs/test_code_blocks.py
(parsed by the CLI and their recipes resolved; the commands run for real in the tests of each verb); here, what
is the README's own: its length, the tour, the seeds link on its first screen, and links that lead somewhere.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs.pages import README, ROOT, SHELL, blocks, check_command, cifarlab_argv, inline_commands, shell_lines

FIRST_SCREEN = 25  # lines a reader sees before scrolling


def readme_commands() -> list[str]:
    """The README's `cifarlab ...` commands: the lines of its shell blocks and the inline ones in backticks."""
    lines = [line for block in blocks(README) if block.lang in SHELL and not block.marker for line in shell_lines(block)]
    return sorted(set(lines) | set(inline_commands(README)))


def test_the_readme_is_a_manual_of_at_most_200_lines():
    assert len(README.read_text().splitlines()) <= 200


def test_the_readme_tours_ten_commands_and_names_the_two_setup_commands():
    text = README.read_text()
    tour_line = text[:text.index("## A tour in ten commands")].count("\n") + 1
    tour = next(b for b in blocks(README) if b.lang in SHELL and b.line > tour_line)
    assert len(shell_lines(tour)) == 10
    setup = [b for b in blocks(README) if b.lang in SHELL and "make demo" in b.body]
    assert setup and shell_lines(setup[0]) == ["make demo", "make test"]


def test_the_first_screen_links_the_seeds_page():
    first = "\n".join(README.read_text().splitlines()[:FIRST_SCREEN])
    assert "(docs/seeds.md)" in first


def test_the_layout_section_is_kept():
    assert "\n## Layout\n" in README.read_text()


def _slug(heading: str) -> str:
    """The id mkdocs gives a heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", heading).strip().lower())


LINKS = sorted(set(re.findall(r"\]\(([^)\s]+)\)", README.read_text())))


@pytest.mark.parametrize("link", [link for link in LINKS if "://" not in link])
def test_a_readme_link_leads_to_a_file_and_heading_that_exist(link):
    path, _, anchor = link.partition("#")
    target = ROOT / path
    assert target.exists(), f"README links {link}, which is not in the repository"
    if anchor:
        headings = [_slug(h) for h in re.findall(r"^#+\s+(.*)$", target.read_text(), re.M)]
        assert anchor in headings, f"README links {link}; {path} has no heading with that id"


@pytest.mark.parametrize("command", readme_commands())
def test_a_readme_command_parses_and_its_recipe_resolves(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outside the checkout: `configs/...` must resolve to the shipped files
    argv = cifarlab_argv(command)
    assert argv is not None, command
    check_command(argv)


def test_the_readme_figure_exists():
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README.read_text())
    assert figures and all((ROOT / figure).is_file() and Path(figure).parts[:2] == ("docs", "figures") for figure in figures)

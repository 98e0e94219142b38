"""The reference pages say what the code says: `cifarlab keys`, each verb's `--help`, every public name.

docs/gen_reference.py makes the pages from the code at every build; these tests run the commands themselves and
compare, so a page that drifted from the CLI, or a generator that dropped something, fails here.
"""

from __future__ import annotations

import importlib.util
import re

import pytest

from cifarlab.cli import VERBS, main
from tests.docs.pages import DOCS


def _generator():
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _generator()


def _table_rows(page: str) -> list[list[str]]:
    rows = []
    for line in page.splitlines():
        if line.startswith("| `"):
            cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
            rows.append([re.sub(r"^`+ ?| ?`+$", "", cells[0]), cells[1], re.sub(r"^`+ ?| ?`+$", "", cells[2]), cells[3]])
    return rows


def _plain(cell: str) -> str:
    return cell.replace("\\|", "|").replace("&lt;", "<").replace("&gt;", ">")


def test_the_keys_page_has_every_line_cifarlab_keys_prints(capsys):
    assert main(["keys"]) == 0
    printed = capsys.readouterr().out.splitlines()
    rows = _table_rows(GEN.keys_page())
    names = [line.split()[0] for line in printed if line and not line.startswith(" ")]
    assert [row[0] for row in rows] == names
    for name, accepts, default, help_ in rows:
        at = next(i for i, line in enumerate(printed) if line.split()[:1] == [name])
        assert re.fullmatch(rf"{re.escape(name)}\s+{re.escape(default)}\s+{re.escape(_plain(accepts))}", printed[at]), printed[at]
        following = printed[at + 1] if at + 1 < len(printed) else ""
        if help_:
            assert following.strip() == _plain(help_), name
        else:
            assert not following.startswith(" "), name


def test_the_cli_page_has_a_section_for_every_verb():
    commands = [command for command, _ in GEN.verb_helps()]
    assert [c for c in commands if c.count(" ") == 1] == [f"cifarlab {verb}" for verb in VERBS]
    page = GEN.cli_page()
    for command in commands:
        assert f"# {command}\n" in page


@pytest.mark.parametrize(("command", "text"), GEN.verb_helps(), ids=[c for c, _ in GEN.verb_helps()])
def test_the_cli_page_shows_what_help_prints(command, text, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", GEN.HELP_COLUMNS)
    with pytest.raises(SystemExit) as exit_:
        main([*command.split()[1:], "--help"])
    assert exit_.value.code == 0
    printed = capsys.readouterr().out
    assert printed == text
    assert f"```text\n{printed.rstrip()}\n```" in GEN.cli_page()


def test_the_api_page_documents_every_public_name():
    import cifarlab

    page = GEN.api_page()
    public = [name for name in cifarlab.__all__ if not name.startswith("__")]
    for name in public:
        assert f"## cifarlab.{name}\n" in page, name
    assert len(re.findall(r"^::: ", page, re.M)) >= len(public)

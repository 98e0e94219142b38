"""Every shell and Python block of the README and the docs runs here, or says in one line why it cannot.

Shell blocks hold `cifarlab` commands: each is parsed by the CLI's own parser and the recipe, sweep, study or
tune file it names is resolved, from a folder outside the checkout (as after `pip install`), so a renamed
option or recipe cannot leave a documented command broken. The commands themselves run for real in the
tests of each verb. Python blocks run as written, a page's blocks in order in one namespace, in a fresh
folder. Inline `cifarlab ...` commands in prose and tables are checked like shell lines.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.docs.pages import (
    NOTEBOOK_EXAMPLE,
    ROOT,
    SHELL,
    Block,
    blocks,
    check_command,
    cifarlab_argv,
    inline_commands,
    pages,
    runnable_blocks,
    shell_lines,
)


def _id(block: Block) -> str:
    return block.where


def test_the_pages_have_blocks_of_both_kinds():
    assert len(runnable_blocks(SHELL)) > 20 and len(runnable_blocks(("python",))) >= 5


@pytest.mark.parametrize("block", [b for b in runnable_blocks(SHELL + ("python",)) if b.marker], ids=_id)
def test_a_block_that_does_not_run_says_why_in_one_line(block):
    if block.marker == NOTEBOOK_EXAMPLE:
        notebook = json.loads((ROOT / "examples" / "quickstart.ipynb").read_text())
        code = "\n".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code")
        assert block.body.strip() in code, f"{block.where}: the notebook example must be in examples/quickstart.ipynb word for word"
        return
    reason = block.not_run_reason
    assert reason and len(reason) >= 10, f"{block.where}: write <!-- not run: REASON --> with a reason, right before the block"


@pytest.mark.parametrize("block", [b for b in runnable_blocks(SHELL) if not b.marker], ids=_id)
def test_a_shell_block_holds_only_commands_that_parse_and_resolve(block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outside the checkout: `configs/...` must resolve to the shipped files
    lines = shell_lines(block)
    assert lines, f"{block.where}: an empty block"
    for line in lines:
        argv = cifarlab_argv(line)
        assert argv is not None, (f"{block.where}: `{line}` is not a cifarlab command; a block that cannot be checked here "
                                  "needs <!-- not run: REASON --> on the line before it")
        check_command(argv)


INLINE = [(page, command) for page in pages() for command in inline_commands(page)]


@pytest.mark.parametrize(("page", "command"), INLINE, ids=[f"{p.relative_to(ROOT)}:{c}" for p, c in INLINE])
def test_an_inline_command_parses_and_resolves(page, command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    check_command(cifarlab_argv(command))


PYTHON_PAGES = sorted({b.page for b in runnable_blocks(("python",)) if not b.marker})


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("CIFARLAB_DATA"), reason="the Python examples train on CIFAR-10: set CIFARLAB_DATA")
@pytest.mark.parametrize("page", PYTHON_PAGES, ids=[str(p.relative_to(ROOT)) for p in PYTHON_PAGES])
def test_the_python_blocks_of_a_page_run_as_written(page: Path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for block in blocks(page):
        if block.lang == "python" and not block.marker:
            exec(compile(block.body, block.where, "exec"), namespace)  # noqa: S102 - the page's own example code
    assert any((tmp_path / "runs").iterdir())  # the examples' runs went where they ran


TUNE_FILES = [b for b in runnable_blocks(("yaml",)) if "\nspace:" in "\n" + b.body]


@pytest.mark.parametrize("block", TUNE_FILES, ids=_id)
def test_a_tune_file_shown_in_the_docs_is_one_cifarlab_reads(block, tmp_path, monkeypatch):
    from cifarlab.tuning.tune_file import read_tune_file

    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_tune.yaml").write_text(block.body)
    assert read_tune_file(tmp_path / "my_tune.yaml").trials > 0

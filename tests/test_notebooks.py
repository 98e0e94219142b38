"""The notebooks in examples/ and the README's notebook example run as written."""

import json
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")


def _run_notebook(path: Path, cwd: Path) -> dict:
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return notebook


def _code(notebook) -> str:
    return "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")


def test_the_readme_notebook_example_is_the_quickstart_notebook_word_for_word():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- notebook example -->\s*```python\n(.*?)```", readme, re.S)
    assert block, "README.md must hold the notebook example after <!-- notebook example -->"
    notebook = nbformat.read(ROOT / "examples" / "quickstart.ipynb", as_version=4)
    assert block.group(1).strip() in _code(notebook)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("CIFARLAB_DATA"), reason="the notebooks train on CIFAR-10: set CIFARLAB_DATA")
@pytest.mark.parametrize("name", ["quickstart.ipynb", "bit_fewshot.ipynb"])
def test_notebook_runs_as_written(name, tmp_path):
    notebook = _run_notebook(ROOT / "examples" / name, tmp_path)
    errors = [output for cell in notebook.cells for output in cell.get("outputs", []) if output.output_type == "error"]
    assert not errors, json.dumps(errors)[:2000]
    assert any((tmp_path / "runs").iterdir())  # the runs went where the notebook ran

"""The site builds with `mkdocs build --strict`, every page is in it, and a broken page fails the build."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from tests.docs.conftest import mkdocs_build
from tests.docs.pages import DOCS, HISTORY, ROOT


def _nav_pages(nav) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in _nav_pages(value)]
    return [page for item in nav for page in _nav_pages(item)]


def _config() -> dict:
    # mkdocs.yml is plain YAML apart from tags this test does not use; safe_load reads it.
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text())


def test_the_site_builds_strictly_with_every_page(built_site: Path):
    nav = _nav_pages(_config()["nav"])
    written = {str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md")}
    generated = {"reference/keys.md", "reference/cli.md", "reference/api.md"}
    assert written | generated == set(nav), "every page in docs/ (and each generated one) is in the nav, and no other"
    for page in nav:
        html = built_site / ("index.html" if page == "index.md" else page.removesuffix(".md") + "/index.html")
        assert html.is_file(), f"{page} was not built"


def test_the_built_pages_show_their_figures(built_site: Path):
    for html in built_site.rglob("*.html"):
        for source in re.findall(r'<img[^>]+src="([^"]+)"', html.read_text()):
            if "://" not in source:
                assert (html.parent / source).resolve().is_file(), f"{html.relative_to(built_site)} shows {source}, which was not built"


def test_the_history_page_shows_the_history_file(built_site: Path):
    page = (built_site / "history" / "index.html").read_text()
    first_section = re.search(r"^## (.+)$", HISTORY.read_text(), re.M).group(1)
    assert first_section in page


def _project_copy(tmp_path: Path) -> Path:
    """mkdocs.yml, docs/ and the history file in a folder of their own, with src/ linked, to break on purpose."""
    project = tmp_path / "project"
    shutil.copytree(DOCS, project / "docs")
    shutil.copy(ROOT / "mkdocs.yml", project / "mkdocs.yml")
    (project / "bench" / "results").mkdir(parents=True)
    shutil.copy(HISTORY, project / "bench" / "results" / "history.md")
    os.symlink(ROOT / "src", project / "src")
    return project


BREAKAGES = {
    "a broken link": ("index.md", "\n[gone](no-such-page.md)\n", "no-such-page.md"),
    "a link to a missing heading": ("index.md", "\n[gone](benchmarks.md#no-such-heading)\n", "no-such-heading"),
    "a page missing from the nav": ("orphan.md", "# Orphan\n", "orphan.md"),
    "a bad API reference": ("index.md", "\n::: cifarlab.no_such_name\n", "cifarlab.no_such_name"),
}


@pytest.mark.slow
@pytest.mark.parametrize("breakage", BREAKAGES, ids=list(BREAKAGES))
def test_a_broken_page_fails_the_strict_build(breakage, tmp_path):
    project = _project_copy(tmp_path)
    page, addition, named = BREAKAGES[breakage]
    with (project / "docs" / page).open("a") as file:
        file.write(addition)
    result = mkdocs_build(project, tmp_path / "site")
    assert result.returncode != 0, f"{breakage} built without an error"
    assert named in result.stdout + result.stderr

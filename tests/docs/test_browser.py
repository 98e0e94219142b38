"""The built site looked at in a real browser: pages render with their figures and the search finds a recipe key.

Debian's Chromium (`apt-get install -y chromium`) driven by Playwright for Python (the docs extra), the site
served from its build folder on localhost. Screenshots are left in the test's temporary folder.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds the site and starts a browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # one line per request would bury the test's own output
        pass


@pytest.fixture
def site_url(built_site: Path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(built_site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def browser_page():
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is in the docs extra: pip install -e '.[docs]'")
    if not Path(CHROMIUM).is_file():
        pytest.skip("Chromium is not installed: apt-get install -y chromium (Debian's package; .ci/run installs it)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()


def _figures(page) -> list[tuple[str, int]]:
    """(file name, natural width) of every image in the page's article; width 0 means it did not load."""
    return page.evaluate("Array.from(document.querySelectorAll('article img'))"
                         ".map(img => [img.getAttribute('src').split('/').pop(), img.complete ? img.naturalWidth : 0])")


@pytest.mark.slow
def test_the_home_page_and_a_guide_render_with_their_figures(site_url, browser_page, tmp_path):
    page = browser_page
    page.goto(site_url)
    assert page.locator("article h1").first.inner_text().startswith("cifarlab")
    assert [name for name, width in _figures(page) if width > 0] == ["gradcam_quick.png"]
    page.screenshot(path=str(tmp_path / "home.png"))

    page.goto(site_url + "guides/analysis/")
    assert page.locator("article h1").first.inner_text().startswith("Analysis")
    figures = _figures(page)
    assert len(figures) >= 5 and all(width > 0 for _, width in figures), figures
    page.screenshot(path=str(tmp_path / "analysis.png"), full_page=True)


def test_the_site_search_finds_a_recipe_key(site_url, browser_page, tmp_path):
    page = browser_page
    page.goto(site_url)
    page.click("input[data-md-component=search-query]")
    page.keyboard.type("label_smoothing")
    page.wait_for_selector(".md-search-result__item", timeout=30_000)
    links = page.locator(".md-search-result__item a").evaluate_all("links => links.map(link => link.href)")
    page.screenshot(path=str(tmp_path / "search.png"))
    assert links and "reference/keys/" in links[0], links  # the key's own row comes first

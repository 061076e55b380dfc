"""A real headless browser for the report page's tests: Debian's Chromium driven by Playwright.

The browser comes from the system package (``apt-get install chromium``, which ``.ci/run``
does), never from a download. It starts with the network-facing features off (the machine
has no network), and every page it opens records its console errors, uncaught exceptions
and the URLs it requested, so a test can assert there were none beyond local files.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage"]
# Schemes a self-contained page may load from: its own files, inline data, its own blobs.
LOCAL_SCHEMES = ("file:", "data:", "blob:")


def find_chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def require_browser() -> str:
    """The Chromium executable; skip (outside CI) or fail (in CI) when it or Playwright is
    missing."""
    chromium = find_chromium()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        chromium = None
        reason = "Playwright for Python not installed (pip install -e '.[dev]')"
    else:
        reason = "Chromium not installed (apt-get install chromium)"
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail(f"{reason} but CI is set: .ci/run must install it")
        pytest.skip(f"{reason}; CI unset")
    return chromium


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module."""
    chromium = require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class OpenedPage:
    page: object  # playwright Page
    context: object
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def remote_requests(self) -> list[str]:
        return [url for url in self.requests if not url.startswith(LOCAL_SCHEMES)]

    def close(self) -> None:
        self.context.close()


def open_page(browser, path: Path, viewport=(1280, 900)) -> OpenedPage:
    """``path`` opened from a file:// URL in a fresh context (empty storage, downloads on)."""
    context = browser.new_context(accept_downloads=True,
                                  viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    opened = OpenedPage(page, context)
    page.on("console", lambda m: opened.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: opened.errors.append(str(exc)))
    page.on("request", lambda request: opened.requests.append(request.url))
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    return opened


def load_every_thumbnail(page) -> list[dict]:
    """Scroll each gallery image into view, wait for it to load or fail; their states."""
    return page.evaluate("""async () => {
        const images = Array.from(document.querySelectorAll('.tile img'));
        for (const img of images) {
            img.scrollIntoView();
            try { await img.decode(); } catch (e) { /* broken: naturalWidth stays 0 */ }
        }
        return images.map(img => ({src: img.getAttribute('src'), loading: img.loading,
                                   naturalWidth: img.naturalWidth}));
    }""")

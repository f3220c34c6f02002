"""Open a page in a real headless Chromium (Debian's, driven by Playwright) and report what a reader sees."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                    reason="Chromium not installed (apt-get install chromium; .ci/run does)")


def render(page_path: Path) -> dict:
    """Broken images, console errors, section ids and table row counts of a local HTML page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(page_path.resolve().as_uri())
        found = page.evaluate("""() => ({
            images: document.images.length,
            broken: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).length,
            sections: Array.from(document.querySelectorAll('h2[id]')).map(h => h.id),
            tableRows: Array.from(document.querySelectorAll('table')).map(t => t.rows.length),
            requests: performance.getEntriesByType('resource').map(r => r.name).filter(n => !n.startsWith('data:')),
        })""")
        browser.close()
    return {**found, "errors": errors}

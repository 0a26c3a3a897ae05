"""A real headless browser for the tests: Debian's Chromium, driven by Playwright.

Playwright's own browser download needs the network; `make test` installs Debian's
`chromium` package instead (Makefile), which Playwright drives through its executable
path. PHOENIX_CHROMIUM names another Chromium.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Page, Request, sync_playwright

# Headless, and quiet on a machine with no network: without the background services'
# flags Chromium keeps trying to reach Google's hosts. --no-sandbox: CI runs as root.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    found = os.environ.get("PHOENIX_CHROMIUM") or shutil.which("chromium")
    if not found:
        raise RuntimeError(
            "no Chromium: `make test` installs Debian's chromium package as root; "
            "else install it (apt-get install chromium) or set PHOENIX_CHROMIUM"
        )
    return found


@dataclass
class Opened:
    """A page as the browser shows it, with what it asked the network for and the
    script errors it raised."""

    page: Page
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@contextmanager
def opened(path: Path) -> Iterator[Opened]:
    """`path` (a local HTML file) in headless Chromium."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            seen = Opened(page)

            def requested(request: Request) -> None:
                if not request.url.startswith(("file:", "data:", "blob:", "about:")):
                    seen.requests.append(request.url)

            page.on("request", requested)
            page.on("pageerror", lambda error: seen.errors.append(str(error)))
            page.goto(path.resolve().as_uri())
            yield seen
        finally:
            browser.close()

"""Headless Chromium for the browser tests (Debian's chromium; playwright cannot download
its own browser here). Flags as in docs: no sandbox as root, no background networking."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def have_chromium() -> bool:
    return Path(CHROMIUM).exists()


def launch(playwright):
    """Start headless Chromium through a running ``sync_playwright()`` context."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)


@contextmanager
def chromium_page(**page_options):
    """A fresh page in headless Chromium (skips the test without playwright), with
    ``expect`` waiting up to 30 s; yields ``(page, expect)``."""
    import pytest

    sync_api = pytest.importorskip("playwright.sync_api")
    os.environ.setdefault("PLAYWRIGHT_BROWSERS_PATH", "0")
    with sync_api.sync_playwright() as pw:
        browser = launch(pw)
        try:
            sync_api.expect.set_options(timeout=30000)
            yield browser.new_page(**page_options), sync_api.expect
        finally:
            browser.close()

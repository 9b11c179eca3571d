"""Headless Chromium for the browser tests (Debian's chromium; playwright cannot download
its own browser here). Flags as in docs: no sandbox as root, no background networking."""

from __future__ import annotations

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

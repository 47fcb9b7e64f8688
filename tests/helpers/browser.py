"""Debian's Chromium driven by Playwright, for the console's end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator

from playwright.async_api import Browser, async_playwright

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser")


def chromium_path() -> str:
    """The system Chromium (`make test` installs Debian's); a loud failure when it is missing."""
    configured = os.environ.get("CHARGEBOT_CHROMIUM")
    found = configured or next(
        (path for name in CHROMIUM_CANDIDATES if (path := shutil.which(name))), None
    )
    if not found:
        raise AssertionError(
            "Chromium is not installed: the console's browser tests need Debian's `chromium` "
            "(`make test` installs it with apt-get; or set CHARGEBOT_CHROMIUM to a binary)."
        )
    return found


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless Chromium, closed (with its open pages and event streams) on exit."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            # Root in a container has no user namespaces for Chromium's sandbox.
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            yield browser
        finally:
            await browser.close()

"""Screenshots of the console for the README: `make screenshots` (needs Debian's chromium).

Runs `chargebot demo --no-chat` (seeded network, simulated chargers, a month of history,
two drivers in the support queue), logs in as the demo operator in headless Chromium,
takes over a conversation and replies, and saves the pages to docs/screenshots/.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.demo_console import DEMO_STAFF_PASSWORD
from tests.helpers.browser import chromium

OUT = Path("docs/screenshots")
PORT = int(os.environ.get("SCREENSHOT_PORT", "8766"))
BASE = f"http://127.0.0.1:{PORT}"


def wait_for_server(deadline: float = 60) -> None:
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        try:
            if httpx.get(f"{BASE}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit("the demo server did not start; try `.venv/bin/chargebot demo --no-chat`")


async def shoot() -> None:
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 860}, locale="en-GB")
        await page.goto(f"{BASE}/console/language/en?next=/console/login")
        await page.fill("input[name=email]", "operator@chargebot.invalid")
        await page.fill("input[name=password]", DEMO_STAFF_PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{BASE}/console/queue")
        await page.wait_for_selector(".queue-item")
        await page.screenshot(path=OUT / "console-queue.png")

        await page.locator(".queue-item a.open").first.click()
        await page.click("#claim")
        await page.fill(
            "#reply-text", "Hej! Jag heter Olle och hjälper dig. Vilket uttag står du vid?"
        )
        await page.click("#send")
        await page.wait_for_selector(".transcript .from-agent")
        await page.screenshot(path=OUT / "console-conversation.png", full_page=True)

        await page.goto(f"{BASE}/console/network")
        await page.wait_for_timeout(1500)  # the live feed connects; chargers are online
        await page.screenshot(path=OUT / "console-stations.png")
        await page.goto(f"{BASE}/console/usage")
        await page.screenshot(path=OUT / "console-usage.png", full_page=True)


def main() -> int:
    demo = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "demo", "--no-chat", "--port", str(PORT)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # its shutdown logs every simulated charger leaving
    )
    try:
        wait_for_server()
        time.sleep(6)  # the simulated chargers boot and report their connectors
        OUT.mkdir(parents=True, exist_ok=True)
        asyncio.run(shoot())
        for path in sorted(OUT.glob("console-*.png")):
            print(f"wrote {path}")
    finally:
        demo.terminate()
        demo.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

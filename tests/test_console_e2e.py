"""The console in a real headless browser: an SMS driver is escalated, an agent takes over.

The app is served by uvicorn with SMS on (the Twilio double at the network boundary); the
browser is Debian's Chromium driven by Playwright. Nothing in the page is reloaded while the
queue and the transcript change: the test marks the window and checks the mark survives.
"""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page, expect

from backend.settings import Settings
from tests.helpers.browser import chromium
from tests.helpers.sms import EMMA, sms_settings, twilio_app
from tests.helpers.support import PASSWORD, add_staff
from tests.helpers.twilio_double import RecordingTwilioClient

SECONDS = 1000  # Playwright counts milliseconds


async def log_in(page: Page, base: str, email: str) -> None:
    await page.goto(f"{base}/console/login")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/console/queue")


async def not_reloaded(page: Page) -> Any:
    return await page.evaluate("window.__notReloaded === true")


async def test_an_agent_sees_an_sms_escalation_live_claims_it_and_replies(
    settings: Settings,
) -> None:
    api = RecordingTwilioClient()
    console_settings = sms_settings(settings, console_poll_seconds=0.2)
    async with twilio_app(console_settings, api) as twilio, chromium() as browser:
        await add_staff(twilio.live.http, "lena@example.se", "support", "Lena Holm")
        base = f"http://127.0.0.1:{twilio.live.port}"
        page = await browser.new_page(locale="en-GB")
        await log_in(page, base, "lena@example.se")
        await expect(page.locator("#queue")).to_contain_text("Nobody is waiting")
        await expect(page.locator("#feed")).to_have_text("live", timeout=10 * SECONDS)
        await page.evaluate("window.__notReloaded = true")

        # Emma texts SUPPORT; her conversation appears in the open queue page by itself.
        assert "support" in (await twilio.text(EMMA, "SUPPORT") or "").lower()
        item = page.locator(".queue-item", has_text=EMMA)
        await expect(item).to_be_visible(timeout=15 * SECONDS)
        await expect(item).to_contain_text("sms")
        await expect(item).to_contain_text("waiting")
        assert await not_reloaded(page), "the queue page was reloaded"

        # Open it, claim it, reply; the reply is in the transcript and reaches her phone.
        await item.locator("a.open").click()
        await page.wait_for_url(f"{base}/console/conversations/*")
        await expect(page.locator("#transcript")).to_contain_text("SUPPORT")  # as she wrote it
        await page.click("#claim")
        await expect(page.locator("#mode")).to_contain_text("Lena Holm")
        reply = "Hi Emma, this is Lena from support. Which charger are you at?"
        await page.fill("#reply-text", reply)
        await page.click("#send")
        await expect(page.locator("#transcript")).to_contain_text(reply)
        assert "this is Lena" in await twilio.sent(EMMA, "this is Lena")

        # Her answer comes in as she sends it, without a reload, and the bot stays quiet.
        await page.evaluate("window.__notReloaded = true")
        assert await twilio.text(EMMA, "Kungsgatan, the left one") is None
        await expect(page.locator("#transcript")).to_contain_text(
            "Kungsgatan, the left one", timeout=15 * SECONDS
        )
        assert await not_reloaded(page), "the conversation page was reloaded"


async def test_a_chat_a_colleague_claims_turns_into_the_open_with_a_reason_page(
    settings: Settings,
) -> None:
    """Issue #13: once Omar holds it, Lena's open page stops showing the driver's words."""
    api = RecordingTwilioClient()
    console_settings = sms_settings(settings, console_poll_seconds=0.2)
    async with twilio_app(console_settings, api) as twilio, chromium() as browser:
        http = twilio.live.http
        await add_staff(http, "lena@example.se", "support", "Lena Holm")
        await add_staff(http, "omar@example.se", "support", "Omar")
        token = await http.post(
            "/auth/token", data={"username": "omar@example.se", "password": PASSWORD}
        )
        omar = {"Authorization": f"Bearer {token.json()['access_token']}"}
        base = f"http://127.0.0.1:{twilio.live.port}"
        page = await browser.new_page(locale="en-GB")
        await log_in(page, base, "lena@example.se")
        assert "support" in (await twilio.text(EMMA, "SUPPORT") or "").lower()
        item = page.locator(".queue-item", has_text=EMMA)
        await expect(item).to_be_visible(timeout=15 * SECONDS)
        await item.locator("a.open").click()
        await page.wait_for_url(f"{base}/console/conversations/*")
        await expect(page.locator("#transcript")).to_contain_text("SUPPORT")
        conversation_id = page.url.rsplit("/", 1)[1]

        claimed = await http.post(f"/support/conversations/{conversation_id}/claim", headers=omar)
        assert claimed.status_code == 200
        await expect(page.locator("#forbidden")).to_contain_text(
            "held by Omar", timeout=15 * SECONDS
        )
        assert await page.locator("#transcript").count() == 0
        await expect(page.locator("#open-reason")).to_be_visible()

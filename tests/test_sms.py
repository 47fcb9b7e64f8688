"""SMS end to end: form posts signed like Twilio's to the real webhook of a served app.

The only double is at the network boundary to Twilio: `RecordingTwilioClient`, the HTTP
client twilio-python's REST client sends through. Signatures are computed with the real
`RequestValidator`. Chargers are the OCPP simulator on real WebSockets.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import col, func, select

from backend.models import Conversation, Driver, ProcessedEvent, SmsDelivery
from backend.settings import ConfigurationError, Settings
from bot.adapters.sms import SIGNATURE_HEADER, render
from bot.adapters.sms.grammar import RESERVED
from bot.adapters.sms.text import GSM7_BASIC, is_gsm7, paginate, segments, sms_words, to_gsm7
from bot.i18n import CATALOGS
from bot.messages import Choice, Link, Reply
from tests.helpers.charging import priced_charger, session_of, simulator
from tests.helpers.factories import make_driver
from tests.helpers.sms import (
    ANNA,
    EMMA,
    PUBLIC,
    Twilio,
    assert_sendable,
    inbound,
    sessions_of,
    sms_settings,
    twilio_app,
    twiml_text,
)
from tests.helpers.twilio_double import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    RecordingTwilioClient,
    signature,
)
from tests.helpers.waiting import eventually

STRANGER = "+46709998877"


@pytest.fixture
def api() -> RecordingTwilioClient:
    return RecordingTwilioClient()


@pytest.fixture
async def twilio(settings: Settings, api: RecordingTwilioClient) -> AsyncIterator[Twilio]:
    async with twilio_app(sms_settings(settings), api) as running:
        yield running


# --- signatures ------------------------------------------------------------------------------


async def test_a_missing_or_wrong_signature_is_403_and_nothing_happens(twilio: Twilio) -> None:
    params = inbound(ANNA, "STATUS")
    unsigned = await twilio.post("/sms/twilio", params, sign=False)
    assert unsigned.status_code == 403
    wrong = await twilio.http.post(
        "/sms/twilio", data=params, headers={SIGNATURE_HEADER: "bm90IGEgc2lnbmF0dXJl"}
    )
    assert wrong.status_code == 403
    other_token = signature(f"{PUBLIC}/sms/twilio", params, token="another-accounts-token")
    forged = await twilio.http.post(
        "/sms/twilio", data=params, headers={SIGNATURE_HEADER: other_token}
    )
    assert forged.status_code == 403
    tampered = {**params, "Body": "AVSLUTA"}  # signed for another body
    changed = await twilio.http.post(
        "/sms/twilio",
        data=tampered,
        headers={SIGNATURE_HEADER: signature(f"{PUBLIC}/sms/twilio", params)},
    )
    assert changed.status_code == 403
    assert await twilio.count(Conversation) == 0
    assert await twilio.count(ProcessedEvent) == 0


async def test_the_signature_is_checked_against_the_public_url_behind_a_proxy(
    twilio: Twilio,
) -> None:
    # Twilio called https://chargebot.example.se/sms/twilio; the proxy forwarded plain http.
    params = inbound(STRANGER, "MENY")
    local_url = f"http://127.0.0.1:{twilio.live.port}/sms/twilio"
    assert (await twilio.post("/sms/twilio", params, sign_url=local_url)).status_code == 403
    response = await twilio.post("/sms/twilio", params)
    assert response.status_code == 200
    assert "LADDA <kod>" in (twiml_text(response.text) or "")
    # with a query string, the query is part of what is signed
    query_params = inbound(STRANGER, "MENU")
    signed_with_query = await twilio.post(
        "/sms/twilio?source=se", query_params, sign_url=f"{PUBLIC}/sms/twilio?source=se"
    )
    assert signed_with_query.status_code == 200
    signed_without = await twilio.post(
        "/sms/twilio?source=se", inbound(STRANGER, "MENU"), sign_url=f"{PUBLIC}/sms/twilio"
    )
    assert signed_without.status_code == 403


async def test_the_webhooks_are_404_when_sms_is_not_configured(
    settings: Settings, api: RecordingTwilioClient
) -> None:
    async with twilio_app(settings, api) as off:
        assert (await off.post("/sms/twilio", inbound(ANNA, "STATUS"))).status_code == 404
        assert (await off.post("/sms/twilio/status", {"MessageSid": "SM1"})).status_code == 404


def test_production_needs_the_auth_token_when_sms_is_configured(settings: Settings) -> None:
    missing = settings.model_copy(
        update={"twilio_account_sid": ACCOUNT_SID, "twilio_from_number": FROM_NUMBER}
    )
    with pytest.raises(ConfigurationError, match="TWILIO_AUTH_TOKEN"):
        missing.check_secrets()
    placeholder = missing.model_copy(update={"twilio_auth_token": "changeme"})
    with pytest.raises(ConfigurationError, match="TWILIO_AUTH_TOKEN"):
        placeholder.check_secrets()
    missing.model_copy(update={"twilio_auth_token": AUTH_TOKEN}).check_secrets()
    settings.check_secrets()  # no Twilio settings at all: SMS is simply off
    missing.model_copy(update={"environment": "development"}).check_secrets()


# --- charging by SMS -------------------------------------------------------------------------


async def test_charge_by_sms_from_code_to_receipt(twilio: Twilio) -> None:
    await make_driver(twilio.live.http, name="Anna", phone=ANNA, billing="invoice")
    charger = await priced_charger(twilio.live.http)
    code = charger["connectors"][0]["code"]
    async with simulator(twilio.live, charger["id"], power_kw=22):
        offer = await twilio.text(ANNA, f"lada {code.lower()}")  # a typo, lower case
        assert offer is not None
        assert "Sundbyberg Centrum" in offer
        assert "Energi: 4,50 kr per kWh" in offer
        assert "1) Starta laddningen\n2) Avbryt" in offer
        assert "Svara med en siffra 1-2." in offer
        answer_sid = "SM" + "a" * 32
        starting = await twilio.text(ANNA, "1", sid=answer_sid)
        assert starting is not None and "Startar laddaren" in starting
        # Twilio retries the same MessageSid (e.g. our answer was slow): nothing happens again
        assert await twilio.text(ANNA, "1", sid=answer_sid) is None
        started = await twilio.sent(ANNA, "Laddningen har startat vid Sundbyberg Centrum")
        assert "STATUS" in started and "AVSLUTA" in started and "/" not in started
        sessions = await sessions_of(twilio)
        assert len(sessions) == 1
        session_id = sessions[0]["id"]
        await eventually(
            lambda: session_of(twilio.live.http, session_id), lambda s: s["energy_wh"] > 0
        )
        status = await twilio.text(ANNA, "Status")
        assert status is not None and "Kostnad hittills:" in status
        stopping = await twilio.text(ANNA, "AVSLUTA")
        assert stopping is not None and "Avslutar laddningen" in stopping
        receipt = await twilio.sent(ANNA, "Kvitto: Sundbyberg Centrum")
    assert "varav moms 25 %" in receipt
    assert len(await sessions_of(twilio)) == 1
    messages = twilio.api.messages
    assert all(m.sender == FROM_NUMBER for m in messages)
    assert all(m.auth == (ACCOUNT_SID, AUTH_TOKEN) for m in messages)
    assert all(m.status_callback == f"{PUBLIC}/sms/twilio/status" for m in messages)
    history = await twilio.text(ANNA, "histrik")
    assert history is not None and "Sundbyberg Centrum" in history


async def test_ja_confirms_and_a_retry_never_starts_a_second_session(twilio: Twilio) -> None:
    await make_driver(twilio.live.http, name="Anna", phone=ANNA, billing="invoice")
    charger = await priced_charger(twilio.live.http)
    code = charger["connectors"][0]["code"]
    async with simulator(twilio.live, charger["id"], power_kw=22):
        await twilio.text(ANNA, f"LADDA {code}")
        params = inbound(ANNA, "ja")
        first, again = await asyncio.gather(
            twilio.post("/sms/twilio", params), twilio.post("/sms/twilio", params)
        )
        answers = [twiml_text(first.text), twiml_text(again.text)]
        assert sorted(a is None for a in answers) == [False, True]
        assert any(a and "Startar laddaren" in a for a in answers)
        await twilio.sent(ANNA, "Laddningen har startat")
        retry = await twilio.post("/sms/twilio", params)
        assert twiml_text(retry.text) is None
        assert len(await sessions_of(twilio)) == 1
        # STOP with a code is ours (bare STOP is Twilio's): it ends the sender's own charging
        session_id = (await sessions_of(twilio))[0]["id"]
        await eventually(
            lambda: session_of(twilio.live.http, session_id), lambda s: s["status"] == "charging"
        )
        stopping = await twilio.text(ANNA, f"stopp {code}")
        assert stopping is not None and "Avslutar laddningen" in stopping
        await twilio.sent(ANNA, "Kvitto:")


async def test_card_on_file_accounts_may_start_by_sms(twilio: Twilio) -> None:
    await make_driver(
        twilio.live.http, name="Emma", phone=EMMA, billing="card_on_file", language="en"
    )
    charger = await priced_charger(twilio.live.http)
    code = charger["connectors"][0]["code"]
    async with simulator(twilio.live, charger["id"], power_kw=22):
        offer = await twilio.text(EMMA, f"CHARGE {code}")
        assert offer is not None and "1) Start charging" in offer
        starting = await twilio.text(EMMA, "1")
        assert starting is not None and "Starting the charger" in starting
        started = await twilio.sent(EMMA, "Charging has started")
        assert "FINISH" in started
        await eventually(
            lambda: sessions_of(twilio), lambda s: len(s) == 1 and s[0]["status"] == "charging"
        )
        assert (await twilio.text(EMMA, "finsh")) is not None
        await twilio.sent(EMMA, "Receipt:")


async def test_an_unknown_or_pay_per_session_number_is_told_how_to_get_an_account(
    twilio: Twilio,
) -> None:
    await make_driver(twilio.live.http, name="Per", phone="+46705550000")  # pay_per_session
    charger = await priced_charger(twilio.live.http)
    code = charger["connectors"][0]["code"]
    async with simulator(twilio.live, charger["id"], power_kw=22):
        for number in (STRANGER, "+46705550000"):
            offer = await twilio.text(number, f"LADDA {code}")
            assert offer is not None and "1) Starta laddningen" in offer
            refusal = await twilio.text(number, "1")
            assert refusal is not None
            assert "faktura eller sparat kort" in refusal and "SUPPORT" in refusal
            assert "Inget har startats" in refusal
    assert await sessions_of(twilio) == []
    assert twilio.api.messages == []


async def test_swedish_number_formats_are_one_driver(twilio: Twilio) -> None:
    await make_driver(twilio.live.http, name="Anna", phone=ANNA, billing="invoice")
    await twilio.text("0701234567", "STATUS")  # Twilio always sends E.164; be lenient anyway
    await twilio.text(ANNA, "STATUS")
    async with twilio.live.app.state.sessions() as db:
        conversations = (await db.scalars(select(Conversation))).all()
        assert [c.address for c in conversations] == [ANNA]
        assert await db.scalar(select(func.count()).select_from(Driver)) == 1


# --- Twilio's keywords ---------------------------------------------------------------------


async def test_twilios_keywords_get_an_empty_response_and_change_nothing(twilio: Twilio) -> None:
    words = sorted(RESERVED)
    variants = [*words, *(w.upper() for w in words), "Stop", " stop. ", "STOPALL!", "Yes"]
    for word in variants:
        response = await twilio.post("/sms/twilio", inbound(STRANGER, word))
        assert response.status_code == 200
        assert twiml_text(response.text) is None, word
        assert "<Response" in response.text
    assert await twilio.count(Driver) == 0
    assert await twilio.count(Conversation) == 0
    assert await twilio.count(ProcessedEvent) == 0
    # A bare STOPP (not a Twilio keyword) is ours: nothing to stop, and how to opt out
    hint = await twilio.text(STRANGER, "STOPP")
    assert hint is not None and "ingen pågående laddning" in hint and "Skriv STOP" in hint


# --- rendering, pages, menus -----------------------------------------------------------------


async def test_long_messages_are_paged_and_mer_shows_the_next_page(twilio: Twilio) -> None:
    await make_driver(twilio.live.http, name="Anna", phone=ANNA, billing="invoice")
    await twilio.text(ANNA, "STATUS")  # the conversation exists from now on
    lines = [f"Rad {n}: Laddaren vid stationen ’{n}’ – fungerar… 🚗" for n in range(1, 41)]
    channel = twilio.live.app.state.sms
    await channel.deliver(ANNA, [Reply("\n".join(lines))])
    await channel.drain()
    first = twilio.api.bodies_to(ANNA)[-1]
    assert_sendable(first)
    assert segments(first) == 3
    assert first.endswith("Fortsättning: svara MER")
    assert "Rad 1: Laddaren vid stationen '1' - fungerar..." in first
    pages = [first]
    while pages[-1].endswith("svara MER"):
        page = await twilio.text(ANNA, "mer")
        assert page is not None
        pages.append(page)
    text = "\n".join(pages)
    assert all(f"Rad {n}:" in text for n in range(1, 41))
    assert len(pages) >= 3
    done = await twilio.text(ANNA, "MER")
    assert done is not None and "inget mer" in done


async def test_english_pages_end_with_more(twilio: Twilio) -> None:
    await make_driver(twilio.live.http, name="Emma", phone=EMMA, billing="invoice", language="en")
    await twilio.text(EMMA, "STATUS")
    channel = twilio.live.app.state.sms
    await channel.deliver(EMMA, [Reply("word " * 200)])
    await channel.drain()
    assert twilio.api.bodies_to(EMMA)[-1].endswith("To continue, reply MORE")
    page = await twilio.text(EMMA, "MORE")
    assert page is not None and page.startswith("word")


async def test_menu_language_and_out_of_range_numbers(twilio: Twilio) -> None:
    menu = await twilio.text(STRANGER, "meny")
    assert menu is not None and "NÄRA <plats>" in menu and "AVSLUTA" in menu
    english = await twilio.text(STRANGER, "ENGLISH")
    assert english is not None and "English" in english
    menu_en = await twilio.text(STRANGER, "Menu")
    assert menu_en is not None and "CHARGE <code>" in menu_en
    channel = twilio.live.app.state.sms
    await channel.deliver(
        STRANGER, [Reply("Choose", (Choice("Svenska", "lang:sv"), Choice("English", "lang:en")))]
    )
    await channel.drain()
    assert twilio.api.bodies_to(STRANGER)[-1] == (
        "Choose\n1) Svenska\n2) English\n\nReply with a number 1-2."
    )
    wrong = await twilio.text(STRANGER, "7")
    assert wrong is not None and "1-2" in wrong
    swedish = await twilio.text(STRANGER, "1")
    assert swedish is not None and "svenska" in swedish


async def test_a_slow_answer_goes_out_by_rest_instead(
    settings: Settings, api: RecordingTwilioClient
) -> None:
    async with twilio_app(sms_settings(settings, sms_reply_timeout=0.000_001), api) as slow:
        assert await slow.text(STRANGER, "MENY") is None
        await slow.sent(STRANGER, "LADDA <kod>")


# --- outbound: status callbacks, the cap, failures -------------------------------------------


async def test_the_status_callback_records_delivery_and_rejects_unsigned(twilio: Twilio) -> None:
    await make_driver(twilio.live.http, name="Anna", phone=ANNA, billing="invoice")
    await twilio.text(ANNA, "STATUS")
    channel = twilio.live.app.state.sms
    await channel.deliver(ANNA, [Reply("Hej från supporten!")])
    await channel.drain()
    sid = twilio.api.messages[-1].sid

    async def row() -> SmsDelivery:
        async with twilio.live.app.state.sessions() as db:
            found: SmsDelivery | None = await db.scalar(
                select(SmsDelivery).where(col(SmsDelivery.message_sid) == sid)
            )
            assert found is not None
            return found

    assert (await row()).status == "queued"
    assert (await row()).to_number == ANNA
    callback = {
        "SmsSid": sid,
        "SmsStatus": "delivered",
        "MessageStatus": "delivered",
        "To": ANNA,
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": FROM_NUMBER,
        "ApiVersion": "2010-04-01",
    }
    forged = {**callback, "MessageStatus": "failed", "ErrorCode": "30003"}
    assert (await twilio.post("/sms/twilio/status", forged, sign=False)).status_code == 403
    assert (await row()).status == "queued"
    assert (await twilio.post("/sms/twilio/status", callback)).status_code == 204
    assert (await row()).status == "delivered"
    late = {**callback, "MessageStatus": "sent", "SmsStatus": "sent"}  # out of order
    assert (await twilio.post("/sms/twilio/status", late)).status_code == 204
    assert (await row()).status == "delivered"
    # a callback that overtakes the REST answer creates the row itself
    early = {**callback, "MessageSid": "SM" + "f" * 32, "MessageStatus": "sent"}
    assert (await twilio.post("/sms/twilio/status", early)).status_code == 204
    assert await twilio.count(SmsDelivery) == 2


async def test_the_hourly_cap_drops_messages_and_nothing_crashes(
    settings: Settings, api: RecordingTwilioClient
) -> None:
    async with twilio_app(sms_settings(settings, sms_hourly_cap=3), api) as capped:
        channel = capped.live.app.state.sms
        for n in range(5):
            await channel.deliver(ANNA, [Reply(f"Meddelande {n}")])
        await channel.drain()
        assert capped.api.bodies_to(ANNA) == [f"Meddelande {n}" for n in range(3)]
        await channel.deliver(EMMA, [Reply("Till någon annan")])  # per number
        await channel.drain()
        assert capped.api.bodies_to(EMMA) == ["Till någon annan"]
        # answers to the driver's own messages are TwiML, not capped
        assert await capped.text(ANNA, "MENY") is not None


async def test_a_failing_twilio_is_retried_and_never_crashes_a_flow(twilio: Twilio) -> None:
    channel = twilio.live.app.state.sms
    twilio.api.fail_next(2, status=500)
    await channel.deliver(ANNA, [Reply("Efter två fel")])
    await channel.drain()
    assert twilio.api.bodies_to(ANNA) == ["Efter två fel"]
    assert len(twilio.api.calls) == 3
    twilio.api.fail_next(10, status=503)  # more than the attempts: given up, recorded
    await channel.deliver(ANNA, [Reply("Kommer aldrig fram")])
    await channel.drain()
    assert "Kommer aldrig fram" not in twilio.api.bodies_to(ANNA)
    twilio.api.clear_failures()
    twilio.api.fail_next(1, status=400, code=21610)  # opted out with STOP: not retried
    calls = len(twilio.api.calls)
    await channel.deliver(ANNA, [Reply("Avregistrerad")])
    await channel.drain()
    assert len(twilio.api.calls) == calls + 1
    async with twilio.live.app.state.sessions() as db:
        failed = (
            await db.scalars(select(SmsDelivery).where(col(SmsDelivery.status) == "failed"))
        ).all()
    assert [f.error_code for f in failed] == ["20500", "21610"]
    await channel.deliver(ANNA, [Reply("Nu går det igen")])
    await channel.drain()
    assert twilio.api.bodies_to(ANNA)[-1] == "Nu går det igen"
    assert await twilio.text(ANNA, "MENY") is not None  # the webhook still answers


# --- GSM-7 and segments, without a server -------------------------------------------------


def _sample(value: str) -> str:
    return re.sub(r"\{(\w+)\}", "X", value)


def test_every_catalog_text_is_gsm7_and_fits_three_segments_as_sms() -> None:
    for lang, catalog in CATALOGS.items():
        for key, value in catalog.items():
            text = _sample(value)
            assert is_gsm7(text), (lang, key, {ch for ch in text if ch not in GSM7_BASIC})
            rendered = to_gsm7(sms_words(text, lang))
            assert is_gsm7(rendered) and segments(rendered) <= 3, (lang, key)
    assert CATALOGS["sv"].keys() == CATALOGS["en"].keys()


def test_catalog_commands_become_sms_words() -> None:
    started = sms_words(CATALOGS["sv"]["event_started"].format(station="X"), "sv")
    assert "STATUS" in started and "AVSLUTA" in started and "/" not in started
    assert "FINISH" in sms_words(CATALOGS["en"]["event_idle_soon"], "en")
    assert sms_words("4,50 kr/kWh, 2 kr/min", "sv") == "4,50 kr/kWh, 2 kr/min"
    assert sms_words("https://example.se/start", "sv") == "https://example.se/start"


def test_choices_become_a_numbered_list_with_a_hint() -> None:
    text, payloads = render(
        [
            Reply("Vill du starta?", (Choice("Starta", "start:K7P3Q"), Choice("Avbryt", "cancel"))),
            Reply("Mer info", links=(Link("Kvitto", "https://example.se/r/1"),)),
        ],
        "sv",
    )
    assert text == (
        "Vill du starta?\n1) Starta\n2) Avbryt\n\nMer info\nKvitto: https://example.se/r/1"
        "\n\nSvara med en siffra 1-2."
    )
    assert payloads == ["start:K7P3Q", "cancel"]


def test_transliteration() -> None:
    assert to_gsm7("“Hej” – ’du’… • 🚗 — ok") == "\"Hej\" - 'du'... * - ok"
    assert (
        to_gsm7("Åre, Älmhult, Östersund, café, Müller") == "Åre, Älmhult, Östersund, café, Müller"
    )
    assert to_gsm7("Łódź, Ærø, naïve, façade, 5 €, {x} [y] ~z|w\\v^") == (
        "Lodz, Ærø, naive, facade, 5 EUR, (x) (y) -z/w/v"
    )
    assert segments("a" * 160) == 1 and segments("a" * 161) == 2 and segments("a" * 459) == 3
    assert segments("ä" * 160) == 1  # ä is GSM-7
    assert segments("ł" * 70) == 1 and segments("ł" * 71) == 2  # UCS-2: 70/67
    assert segments("€" * 80) == 1 and segments("€" * 81) == 2  # extension: two septets


def test_a_blank_line_is_dropped_when_it_saves_a_segment() -> None:
    text = "a" * 80 + "\n\n" + "b" * 79
    assert segments(text) == 2
    assert paginate(text, "MER") == ["a" * 80 + "\n" + "b" * 79]


@given(st.text(max_size=3000))
def test_any_text_becomes_gsm7_pages_of_at_most_three_segments(text: str) -> None:
    clean = to_gsm7(text)
    assert is_gsm7(clean)
    pages = paginate(clean, "Fortsättning: svara MER")
    for page in pages:
        assert is_gsm7(page)
        assert segments(page) <= 3
    for page in pages[:-1]:
        assert page.endswith("\nFortsättning: svara MER")
    joined = "".join(p.removesuffix("\nFortsättning: svara MER") for p in pages)
    squeeze = re.compile(r"\s+")
    assert squeeze.sub("", joined) == squeeze.sub("", clean)


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ("NÄRA sundbyberg", "hittar inga laddare"),
        ("nara sundbyberg", "hittar inga laddare"),
        ("NEAR Sundbyberg", "find any chargers"),
        ("naer sundbyberg", "find any chargers"),
        ("HISTORIK", "inga laddningar"),
        ("histrik", "inga laddningar"),
        ("HISTORY", "no sessions"),
        ("STATUS", "ingen pågående laddning"),
        ("statsu", "ingen pågående laddning"),
        ("AVSLUTA", "ingen pågående laddning att avsluta"),
        ("FINISH", "no charging in progress to end"),
        ("PRIS ZZZZZ", "ZZZZZ"),
        ("PRICE ZZZZZ", "ZZZZZ"),
        ("SUPPORT", "kö"),
        ("MENY", "LADDA <kod>"),
        ("MENU", "CHARGE <code>"),
    ],
)
async def test_each_command_in_both_languages_reaches_the_engine(
    twilio: Twilio, sent: str, expected: str
) -> None:
    """An empty network: each command still gets its own, sendable answer."""
    reply = await twilio.text(STRANGER, sent)
    assert reply is not None
    assert expected in reply, reply
    assert_sendable(reply)

"""The printable sticker holds a QR code of the Telegram deep link, the code and the SMS text."""

from __future__ import annotations

import io
import re

import httpx
import segno
from PIL import Image

from backend.services.stickers import Sticker
from tests.helpers.factories import make_charger

BORDER = 4


def _modules_from_png(png: bytes, scale: int, size: int) -> list[list[bool]]:
    """Read the QR modules back from the picture by sampling each module's centre."""
    image = Image.open(io.BytesIO(png)).convert("L")
    offset = (image.width - size * scale) // 2
    return [
        [
            image.getpixel((offset + x * scale + scale // 2, y * scale + scale // 2)) < 128  # type: ignore[operator]
            for x in range(size)
        ]
        for y in range(size)
    ]


def _expected_modules(url: str) -> list[list[bool]]:
    qr = segno.make(url, error="m", micro=False)
    return [[bool(v) for v in row] for row in qr.matrix_iter(scale=1, border=BORDER)]


async def test_the_png_sticker_encodes_the_deep_link_of_that_connector(
    admin: httpx.AsyncClient,
) -> None:
    code = (await make_charger(admin))["connectors"][0]["code"]
    response = await admin.get(f"/admin/connectors/{code}/qr.png")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    expected = _expected_modules(f"https://t.me/chargebot_test_bot?start={code}")
    assert _modules_from_png(response.content, 8, len(expected)) == expected


def test_a_sticker_for_another_code_does_not_match() -> None:
    png = Sticker.for_connector("K7P3Q", "chargebot_test_bot").png()
    other = _expected_modules("https://t.me/chargebot_test_bot?start=K7P3R")
    assert _modules_from_png(png, 8, len(other)) != other


async def test_the_svg_sticker_prints_the_code_and_sms_instructions(
    admin: httpx.AsyncClient,
) -> None:
    code = (await make_charger(admin))["connectors"][1]["code"]
    response = await admin.get(f"/admin/connectors/{code.lower()}/qr.svg")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    svg = response.text
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert texts == [
        code,
        f"SMS: LADDA {code} till +46766862334",
        f"Text CHARGE {code} to +46766862334",
    ]
    qr = segno.make(f"https://t.me/chargebot_test_bot?start={code}", error="m", micro=False)
    buffer = io.BytesIO()
    qr.save(buffer, kind="svg", scale=8, border=BORDER, xmldecl=False, nl=False)
    assert buffer.getvalue().decode() in svg


async def test_an_unknown_code_has_no_sticker(admin: httpx.AsyncClient) -> None:
    assert (await admin.get("/admin/connectors/ZZZZZ/qr.svg")).status_code == 404
    assert (await admin.get("/admin/connectors/not-a-code/qr.png")).status_code == 404

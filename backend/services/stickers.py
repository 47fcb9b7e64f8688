"""The printable connector sticker: a QR code of the Telegram deep link, the code and SMS text."""

from __future__ import annotations

import io
from dataclasses import dataclass
from xml.sax.saxutils import escape

import segno
from PIL import Image, ImageDraw, ImageFont

_BORDER_MODULES = 4


@dataclass(frozen=True)
class Sticker:
    """What a connector sticker says."""

    code: str
    deep_link: str
    sms_lines: tuple[str, ...]

    @classmethod
    def for_connector(cls, code: str, bot_username: str, sms_number: str = "") -> Sticker:
        link = f"https://t.me/{bot_username}?start={code}"
        to_sv = f" till {sms_number}" if sms_number else ""
        to_en = f" to {sms_number}" if sms_number else ""
        return cls(
            code=code,
            deep_link=link,
            sms_lines=(f"SMS: LADDA {code}{to_sv}", f"Text CHARGE {code}{to_en}"),
        )

    def _qr(self) -> segno.QRCode:
        return segno.make(self.deep_link, error="m", micro=False)

    def svg(self, scale: int = 8) -> str:
        qr = self._qr()
        buffer = io.BytesIO()
        qr.save(buffer, kind="svg", scale=scale, border=_BORDER_MODULES, xmldecl=False, nl=False)
        inner = buffer.getvalue().decode("utf-8")
        qr_size = int(qr.symbol_size(scale=scale, border=_BORDER_MODULES)[0])
        width = max(qr_size, 360)
        code_y = qr_size + 40
        lines = [
            f'<text x="{width // 2}" y="{code_y}" font-size="36" font-weight="bold" '
            f'font-family="DejaVu Sans Mono, monospace" text-anchor="middle">'
            f"{escape(self.code)}</text>"
        ]
        for index, line in enumerate(self.sms_lines):
            lines.append(
                f'<text x="{width // 2}" y="{code_y + 34 + 22 * index}" font-size="16" '
                f'font-family="DejaVu Sans, sans-serif" text-anchor="middle">{escape(line)}</text>'
            )
        height = code_y + 34 + 22 * len(self.sms_lines)
        offset = (width - qr_size) // 2
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">'
            f'<rect width="100%" height="100%" fill="#fff"/>'
            f'<g transform="translate({offset},0)">{inner}</g>' + "".join(lines) + "</svg>"
        )

    def png(self, scale: int = 8) -> bytes:
        qr = self._qr()
        modules = int(qr.symbol_size(scale=1, border=_BORDER_MODULES)[0])
        qr_size = modules * scale
        width = max(qr_size, 360)
        height = qr_size + 40 + 34 + 22 * len(self.sms_lines)
        image = Image.new("L", (width, height), 255)
        draw = ImageDraw.Draw(image)
        offset = (width - qr_size) // 2
        for row_index, row in enumerate(qr.matrix_iter(scale=1, border=_BORDER_MODULES)):
            for col_index, dark in enumerate(row):
                if dark:
                    x = offset + col_index * scale
                    y = row_index * scale
                    draw.rectangle((x, y, x + scale - 1, y + scale - 1), fill=0)
        draw.text(
            (width // 2, qr_size + 22),
            self.code,
            fill=0,
            font=ImageFont.load_default(size=36),
            anchor="mm",
        )
        small = ImageFont.load_default(size=16)
        for index, line in enumerate(self.sms_lines):
            draw.text(
                (width // 2, qr_size + 56 + 22 * index), line, fill=0, font=small, anchor="mm"
            )
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=True)
        return out.getvalue()

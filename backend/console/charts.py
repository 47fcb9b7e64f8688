"""Server-side SVG bar charts for the console: no JavaScript, no external assets.

Each chart is one self-contained `<svg>` string, accessible (role="img", an aria-label and a
`<title>`), with a `<title>` tooltip on every bar. Shapes carry CSS classes (`chart`, `bar`,
`bar highlight`, `axis`, `grid`, `label`, `value`, `chart-title`, `empty`) for the console
stylesheet, plus presentation attributes (fill, stroke, font) as defaults that a stylesheet
overrides, so a chart also looks right on its own. All text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

BAR = "#4c78a8"
HIGHLIGHT = "#f58518"
AXIS = "#9aa5b1"
GRID = "#e4e7eb"
TEXT = "#3e4c59"
FONT = 'font-family="system-ui, sans-serif"'
CHAR_WIDTH = 7  # px per character of an 11 px label, roughly
TITLE_HEIGHT = 28
MAX_BAR_WIDTH = 48.0


def default_format(value: float) -> str:
    """Whole numbers as such, others with one decimal."""
    if float(value).is_integer():
        return f"{int(value)}"
    return f"{value:.1f}"


def _num(value: float) -> str:
    """An SVG coordinate: at most two decimals, no trailing zeros."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _tooltip(label: str, value: float, unit: str, fmt: Callable[[float], str]) -> str:
    return escape(f"{label}: {fmt(value)} {unit}".rstrip())


def _open(width: int, height: int, title: str) -> list[str]:
    safe = escape(title)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" aria-label="{safe}">',
        f"<title>{safe}</title>",
        f'<text class="chart-title" x="0" y="16" font-size="13" font-weight="600" '
        f'fill="{TEXT}" {FONT}>{safe}</text>',
    ]


def _empty(width: int, height: int, title: str, text: str) -> str:
    parts = _open(width, height, title)
    parts.append(
        f'<text class="empty" x="{width // 2}" y="{(height + TITLE_HEIGHT) // 2}" '
        f'text-anchor="middle" font-size="12" fill="{AXIS}" {FONT}>{escape(text)}</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


def _check(values: Sequence[float], labels: Sequence[str]) -> list[float]:
    """Values as non-negative floats; ValueError when labels do not match them one to one."""
    if len(values) != len(labels):
        raise ValueError(f"{len(values)} values but {len(labels)} labels")
    return [max(0.0, float(v)) if math.isfinite(v) else 0.0 for v in values]


def label_step(labels: Sequence[str], room: float) -> int:
    """Show every n-th x label so that they fit (30 dates on 640 px: every 5th)."""
    if not labels:
        return 1
    slot = max(22, CHAR_WIDTH * max(len(label) for label in labels) + 8)
    fits = max(1, int(room // slot))
    return max(1, math.ceil(len(labels) / fits))


def bar_chart(
    values: Sequence[float],
    labels: Sequence[str],
    *,
    title: str,
    unit: str = "",
    value_format: Callable[[float], str] = default_format,
    width: int = 640,
    height: int = 220,
    highlight_last: bool = False,
    empty_text: str = "No data",
) -> str:
    """Vertical bars, one per value, with a 0 and a max gridline and thinned x labels."""
    data = _check(values, labels)
    if not data:
        return _empty(width, height, title, empty_text)
    top, bottom, right = TITLE_HEIGHT + 8, 22, 8
    peak = max(data)
    left = max(36, CHAR_WIDTH * len(value_format(peak)) + 14)
    plot_w, plot_h = width - left - right, height - top - bottom
    base = top + plot_h
    slot = plot_w / len(data)
    bar_w = min(MAX_BAR_WIDTH, slot - min(4.0, slot * 0.2))
    parts = _open(width, height, title)
    parts += _gridlines(left, width - right, top, base, peak, value_format)
    step = label_step(labels, plot_w)
    for i, (value, label) in enumerate(zip(data, labels, strict=True)):
        bar_h = plot_h * value / peak if peak > 0 else 0.0
        x = left + i * slot + (slot - bar_w) / 2
        last = highlight_last and i == len(data) - 1
        parts.append(
            f'<rect class="{"bar highlight" if last else "bar"}" x="{_num(x)}" '
            f'y="{_num(base - bar_h)}" width="{_num(bar_w)}" height="{_num(bar_h)}" '
            f'fill="{HIGHLIGHT if last else BAR}">'
            f"<title>{_tooltip(label, value, unit, value_format)}</title></rect>"
        )
        if i % step == 0:
            parts.append(
                f'<text class="label" x="{_num(x + bar_w / 2)}" y="{base + 15}" '
                f'text-anchor="middle" font-size="11" fill="{TEXT}" {FONT}>'
                f"{escape(label)}</text>"
            )
    parts.append(
        f'<line class="axis" x1="{left}" y1="{base}" x2="{width - right}" y2="{base}" '
        f'stroke="{AXIS}" stroke-width="1"/>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


def _gridlines(
    x1: float, x2: float, top: float, base: float, peak: float, fmt: Callable[[float], str]
) -> list[str]:
    """The 0 line and, when anything is above zero, the max line, each labelled on the left."""
    lines = [(base, 0.0)] + ([(top, peak)] if peak > 0 else [])
    parts = []
    for y, value in lines:
        parts.append(
            f'<line class="grid" x1="{_num(x1)}" y1="{_num(y)}" x2="{_num(x2)}" y2="{_num(y)}" '
            f'stroke="{GRID}" stroke-width="1"/>'
        )
        parts.append(
            f'<text class="label axis-label" x="{_num(x1 - 6)}" y="{_num(y + 4)}" '
            f'text-anchor="end" font-size="11" fill="{TEXT}" {FONT}>{escape(fmt(value))}</text>'
        )
    return parts


def _shorten(label: str, room: float) -> str:
    """The label cut with an ellipsis to fit `room` pixels (the tooltip keeps it whole)."""
    fits = max(4, int(room // CHAR_WIDTH))
    return label if len(label) <= fits else label[: fits - 1] + "…"


def horizontal_bar_chart(
    values: Sequence[float],
    labels: Sequence[str],
    *,
    title: str,
    unit: str = "",
    value_format: Callable[[float], str] = default_format,
    width: int = 640,
    bar_height: int = 18,
    label_width: int = 180,
    highlight_first: bool = False,
    empty_text: str = "No data",
) -> str:
    """Horizontal bars for a ranking (e.g. stations by kWh): names left, values at the bar end.

    The height follows the number of bars; values are drawn in the given order.
    """
    data = _check(values, labels)
    row = bar_height + 8
    height = TITLE_HEIGHT + 8 + row * max(1, len(data)) + 4
    if not data:
        return _empty(width, height, title, empty_text)
    peak = max(data)
    value_room = CHAR_WIDTH * max(len(f"{value_format(v)} {unit}") for v in data) + 10
    left, plot_w = label_width, max(10, width - label_width - value_room)
    top = TITLE_HEIGHT + 8
    parts = _open(width, height, title)
    for i, (value, label) in enumerate(zip(data, labels, strict=True)):
        y = top + i * row
        bar_w = plot_w * value / peak if peak > 0 else 0.0
        first = highlight_first and i == 0
        text_y = _num(y + bar_height / 2 + 4)
        parts.append(
            f'<text class="label" x="{left - 8}" y="{text_y}" text-anchor="end" '
            f'font-size="11" fill="{TEXT}" {FONT}>{escape(_shorten(label, left - 12))}</text>'
        )
        parts.append(
            f'<rect class="{"bar highlight" if first else "bar"}" x="{left}" y="{y}" '
            f'width="{_num(bar_w)}" height="{bar_height}" fill="{HIGHLIGHT if first else BAR}">'
            f"<title>{_tooltip(label, value, unit, value_format)}</title></rect>"
        )
        parts.append(
            f'<text class="value" x="{_num(left + bar_w + 6)}" y="{text_y}" font-size="11" '
            f'fill="{TEXT}" {FONT}>{escape(f"{value_format(value)} {unit}".rstrip())}</text>'
        )
    parts.append(
        f'<line class="axis" x1="{left}" y1="{top - 4}" x2="{left}" y2="{height - 4}" '
        f'stroke="{AXIS}" stroke-width="1"/>'
    )
    parts.append("</svg>")
    return "\n".join(parts)

"""Every string drivers read, one catalog per language (bot/i18n/sv.py, bot/i18n/en.py)."""

from __future__ import annotations

from bot.i18n import en, sv

CATALOGS: dict[str, dict[str, str]] = {"sv": sv.STRINGS, "en": en.STRINGS}
LANGUAGES = tuple(CATALOGS)
DEFAULT_LANGUAGE = "sv"


def language_of(code: str | None) -> str:
    """A channel's language code ("sv-SE", "en-GB", "de") → "sv" or "en"."""
    if not code:
        return DEFAULT_LANGUAGE
    prefix = code.lower()[:2]
    if prefix in CATALOGS:
        return prefix
    return "sv" if prefix in {"nb", "nn", "no", "da", "fi"} else "en"


def t(lang: str, key: str, **values: object) -> str:
    """The text for `key` in `lang`, with `values` filled in."""
    catalog = CATALOGS.get(lang, CATALOGS[DEFAULT_LANGUAGE])
    return catalog[key].format(**values)


def choose(lang: str, n: int) -> str:
    """ "Reply with a number 1-n" ("Reply 1." when there is one choice)."""
    return t(lang, "sms_choose_one") if n == 1 else t(lang, "sms_choose", n=n)

"""Phone numbers in E.164, the form every channel and the database use."""

from __future__ import annotations

import phonenumbers


class InvalidPhoneNumberError(ValueError):
    """Not a valid, dialable phone number."""


def to_e164(raw: str, default_region: str = "SE") -> str:
    """`070-123 45 67` → `+46701234567`; raises InvalidPhoneNumberError otherwise."""
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumberError(f"not a phone number: {raw!r}") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumberError(f"not a valid phone number: {raw!r}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)

"""Connector short codes: what drivers scan in a QR code or type in an SMS."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Container

# No 0/O, 1/I/L: nothing a driver could misread on a sticker in the rain.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 5
CODE_PATTERN = re.compile(rf"^[{CODE_ALPHABET}]{{4,6}}$")
_SEPARATORS = re.compile(r"[\s\-_.]")


class CodeSpaceExhaustedError(RuntimeError):
    """No free code found after many draws: the code space is (nearly) full."""


def random_code(choice: Callable[[str], str] = secrets.choice, length: int = CODE_LENGTH) -> str:
    return "".join(choice(CODE_ALPHABET) for _ in range(length))


def new_code(
    taken: Container[str],
    choice: Callable[[str], str] = secrets.choice,
    attempts: int = 1000,
) -> str:
    """A random code that is not in `taken`."""
    for _ in range(attempts):
        code = random_code(choice)
        if code not in taken:
            return code
    raise CodeSpaceExhaustedError(f"no free connector code after {attempts} draws")


def normalize_code(typed: str) -> str | None:
    """What a driver typed ("k7p-3q ") as a code ("K7P3Q"), or None if it cannot be one."""
    candidate = _SEPARATORS.sub("", typed).upper()
    return candidate if CODE_PATTERN.match(candidate) else None

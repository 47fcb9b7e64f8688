"""Domain errors; the API layer maps them to HTTP statuses."""

from __future__ import annotations


class DomainError(Exception):
    """Base class; `str(error)` is a message fit to show an operator."""


class NotFoundError(DomainError):
    """The thing asked for does not exist (404)."""


class ConflictError(DomainError):
    """The change collides with existing data or state (409)."""


class InvalidFieldError(DomainError):
    """One field's value is unacceptable (422 naming the field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field

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


class RefusedError(DomainError):
    """A request the rules say no to; `reason` is a stable code for translations."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ConnectorUnavailableError(RefusedError, ConflictError):
    """The connector cannot start now: busy, occupied, faulted, unavailable, offline (409)."""


class AccessDeniedError(RefusedError):
    """This driver may not do this here or now: blocked, members only, closed (403)."""


class CommandFailedError(DomainError):
    """A command reached no charger, or no answer came back in time."""

    def __init__(self, outcome: str, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome

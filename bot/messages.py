"""Channel-neutral messages: what adapters hand the engine and what it hands back."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ChannelUser:
    """Who wrote, as the channel knows them."""

    telegram_user_id: int | None = None
    phone: str | None = None
    name: str | None = None
    language_code: str | None = None


@dataclass(frozen=True)
class Inbound:
    """One thing a driver did: typed text, a command, a button, a shared location."""

    channel: str
    address: str
    text: str | None = None
    command: str | None = None  # "start", "find", "status", ... without the slash
    args: str = ""
    choice: str | None = None  # the payload of a pressed button / a numbered answer
    location: tuple[float, float] | None = None  # (latitude, longitude)
    user: ChannelUser = field(default_factory=ChannelUser)
    message_id: str | None = None  # the channel's id, for deduplication


@dataclass(frozen=True)
class Choice:
    label: str
    payload: str


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class Reply:
    """One message to the driver; adapters render choices as buttons or numbered lists."""

    text: str
    choices: tuple[Choice, ...] = ()
    links: tuple[Link, ...] = ()
    request_location: bool = False
    live_key: str | None = None  # a live status: edited in place where the channel can

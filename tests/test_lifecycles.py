"""The lifecycle tables pinned: every (from, to) pair of every lifecycle, allowed or not.

Changing a table in backend/lifecycles.py breaks these tests on purpose: change the data here
(and the README's diagrams) in the same commit, after checking every caller of the move.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Index, event, text, true
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db import utcnow
from backend.lifecycles import (
    ACTIVE_SESSION_STATUSES,
    AWAITING_START_STATUSES,
    BILLED_SESSION_STATUSES,
    CONVERSATION_LIFECYCLE,
    LIVE_SESSION_STATUSES,
    PAYMENT_LIFECYCLE,
    QUEUE_LIFECYCLE,
    RESERVATION_LIFECYCLE,
    SESSION_LIFECYCLE,
    IllegalTransition,
    Lifecycle,
    QueueStatus,
    ReservationStatus,
)
from backend.models import (
    Charger,
    ChargingSession,
    Conversation,
    ConversationMode,
    PaymentStatus,
    SessionStatus,
)
from backend.services import support
from backend.services.charging import move_session, update_session_while

README = Path(__file__).resolve().parent.parent / "README.md"

# Every move each table allows, written out; every other pair is refused.
SESSION_MOVES = {
    ("pending", "starting"),
    ("pending", "charging"),
    ("pending", "completed"),
    ("pending", "needs_review"),
    ("pending", "failed"),
    ("starting", "charging"),
    ("starting", "completed"),
    ("starting", "needs_review"),
    ("starting", "failed"),
    ("charging", "stopping"),
    ("charging", "completed"),
    ("charging", "needs_review"),
    ("charging", "failed"),
    ("stopping", "charging"),
    ("stopping", "completed"),
    ("stopping", "needs_review"),
    ("stopping", "failed"),
    ("needs_review", "completed"),
}
SESSION_INITIAL = {"pending", "starting", "charging", "failed"}

PAYMENT_MOVES = {
    ("pending", "authorized"),
    ("pending", "captured"),
    ("pending", "released"),
    ("pending", "failed"),
    ("authorized", "captured"),
    ("authorized", "released"),
    ("captured", "refunded"),
    ("refunded", "refunded"),
}
PAYMENT_INITIAL = {"pending"}

CONVERSATION_MOVES = {
    ("bot", "waiting"),
    ("waiting", "agent"),
    ("agent", "agent"),
    ("agent", "bot"),
}
CONVERSATION_INITIAL = {"bot"}

RESERVATION_MOVES = {
    ("requested", "active"),
    ("requested", "refused"),
    ("active", "used"),
    ("active", "cancelled"),
    ("active", "expired"),
    ("active", "ended_by_charger"),
}
RESERVATION_INITIAL = {"requested"}

QUEUE_MOVES = {
    ("waiting", "offered"),
    ("waiting", "left"),
    ("offered", "claimed"),
    ("offered", "lapsed"),
    ("offered", "left"),
}
QUEUE_INITIAL = {"waiting"}

TABLES: dict[str, tuple[Lifecycle[Any], type[StrEnum], set[tuple[str, str]], set[str]]] = {
    "SESSION_LIFECYCLE": (SESSION_LIFECYCLE, SessionStatus, SESSION_MOVES, SESSION_INITIAL),
    "PAYMENT_LIFECYCLE": (PAYMENT_LIFECYCLE, PaymentStatus, PAYMENT_MOVES, PAYMENT_INITIAL),
    "RESERVATION_LIFECYCLE": (
        RESERVATION_LIFECYCLE,
        ReservationStatus,
        RESERVATION_MOVES,
        RESERVATION_INITIAL,
    ),
    "QUEUE_LIFECYCLE": (QUEUE_LIFECYCLE, QueueStatus, QUEUE_MOVES, QUEUE_INITIAL),
    "CONVERSATION_LIFECYCLE": (
        CONVERSATION_LIFECYCLE,
        ConversationMode,
        CONVERSATION_MOVES,
        CONVERSATION_INITIAL,
    ),
}
PAIRS = [
    pytest.param(name, before.value, after.value, id=f"{name}:{before.value}->{after.value}")
    for name, (_, statuses, _, _) in TABLES.items()
    for before, after in itertools.product(statuses, repeat=2)
]


@pytest.mark.parametrize(("name", "before", "after"), PAIRS)
def test_each_pair_is_allowed_exactly_as_written_here(name: str, before: str, after: str) -> None:
    table, statuses, moves, _ = TABLES[name]
    allowed = (before, after) in moves
    assert table.allows(statuses(before), statuses(after)) is allowed
    if allowed:
        table.check(statuses(before), statuses(after))
        assert before in table.sources(statuses(after), [statuses(before)])
    else:
        with pytest.raises(IllegalTransition):
            table.check(statuses(before), statuses(after))
        with pytest.raises(IllegalTransition):
            table.sources(statuses(after), [statuses(before)])


@pytest.mark.parametrize("name", TABLES)
def test_each_table_covers_its_enum_and_starts_where_written(name: str) -> None:
    table, statuses, moves, initial = TABLES[name]
    assert set(table.moves) == set(statuses)
    assert {str(s) for s in table.initial} == initial
    for status in statuses:
        if status.value in initial:
            table.check_initial(status)
        else:
            with pytest.raises(IllegalTransition):
                table.check_initial(status)
    for status in statuses:  # without only_from: every status the table lets move there
        expected = sorted(before for before, after in moves if after == status.value)
        if expected:
            assert table.sources(status) == expected
        else:
            with pytest.raises(IllegalTransition):
                table.sources(status)


def test_the_named_session_subsets() -> None:
    def values(statuses: tuple[SessionStatus, ...]) -> list[str]:
        return [s.value for s in statuses]

    assert values(ACTIVE_SESSION_STATUSES) == ["pending", "starting", "charging", "stopping"]
    assert values(AWAITING_START_STATUSES) == ["pending", "starting"]
    assert values(LIVE_SESSION_STATUSES) == ["charging", "stopping"]
    assert values(BILLED_SESSION_STATUSES) == ["completed", "needs_review"]
    # Active is everything not yet ended: exactly the statuses that may still end.
    ends = {SessionStatus.COMPLETED, SessionStatus.FAILED}
    assert set(ACTIVE_SESSION_STATUSES) == {
        s for s, after in SESSION_LIFECYCLE.moves.items() if ends <= after
    }


def _index_statuses(sql: str) -> list[str]:
    return re.findall(r"'(\w+)'", sql)


def test_the_partial_index_names_exactly_the_active_statuses() -> None:
    indexes = {i.name: i for i in ChargingSession.__table__.indexes}  # type: ignore[attr-defined]
    index = indexes["uq_charging_session_active_connector"]
    assert isinstance(index, Index) and index.unique
    active = [s.value for s in ACTIVE_SESSION_STATUSES]
    for dialect in ("sqlite", "postgresql"):
        where = str(index.dialect_options[dialect]["where"])
        assert where.startswith("status IN (")
        assert _index_statuses(where) == active


async def test_the_migrated_database_indexes_exactly_the_active_statuses(
    db: AsyncSession,
) -> None:
    name = "uq_charging_session_active_connector"
    if db.get_bind().dialect.name == "sqlite":
        query = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"
    else:
        query = "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
    sql = await db.scalar(text(query), {"name": name})
    assert sql is not None
    assert sorted(_index_statuses(sql)) == sorted(s.value for s in ACTIVE_SESSION_STATUSES)


@contextmanager
def _statements(db: AsyncSession) -> Iterator[list[str]]:
    """The SQL statements `db` sends inside the block."""
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(args[2])

    bind = db.get_bind()
    event.listen(bind, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(bind, "before_cursor_execute", record)


async def _a_session(db: AsyncSession, status: SessionStatus) -> ChargingSession:
    db.add(Charger(id="CP-LIFE", online=True))
    session = ChargingSession(charger_id="CP-LIFE", connector_id=1, status=status)
    db.add(session)
    await db.commit()
    return session


async def test_an_illegal_session_move_raises_and_writes_nothing(db: AsyncSession) -> None:
    session = await _a_session(db, SessionStatus.COMPLETED)
    assert session.id is not None
    before = session.updated_at
    with _statements(db) as sent:
        with pytest.raises(IllegalTransition, match="completed -> charging"):
            await move_session(
                db,
                session.id,
                SessionStatus.CHARGING,
                only_from=[SessionStatus.COMPLETED],
                failure_reason="must not be written",
            )
        with pytest.raises(IllegalTransition, match="nothing may become pending"):
            await move_session(db, session.id, SessionStatus.PENDING, failure_reason="nor this")
    assert sent == []  # refused before any SQL
    await db.commit()
    again = await db.get(ChargingSession, session.id, populate_existing=True)
    assert again is not None
    assert again.status == SessionStatus.COMPLETED
    assert again.failure_reason is None
    assert again.updated_at == before


async def test_a_legal_move_from_a_status_the_row_left_changes_nothing(db: AsyncSession) -> None:
    session = await _a_session(db, SessionStatus.FAILED)
    assert session.id is not None
    stale = await move_session(
        db, session.id, SessionStatus.STARTING, only_from=[SessionStatus.PENDING]
    )
    later = utcnow()
    held = await update_session_while(
        db, session.id, SessionStatus.PENDING, start_deadline_at=later
    )
    assert (stale, held) == (False, False)
    await db.commit()
    again = await db.get(ChargingSession, session.id, populate_existing=True)
    assert again is not None
    assert (again.status, again.start_deadline_at) == (SessionStatus.FAILED, None)


async def test_a_legal_session_move_changes_the_row(db: AsyncSession) -> None:
    session = await _a_session(db, SessionStatus.PENDING)
    assert session.id is not None
    moved = await move_session(db, session.id, SessionStatus.FAILED, failure_reason="timed_out")
    await db.commit()
    again = await db.get(ChargingSession, session.id, populate_existing=True)
    assert again is not None
    assert moved
    assert (again.status, again.failure_reason) == (SessionStatus.FAILED, "timed_out")


async def test_an_illegal_conversation_move_raises_and_writes_nothing(db: AsyncSession) -> None:
    conversation = Conversation(channel="telegram", address="42", mode=ConversationMode.WAITING)
    db.add(conversation)
    await db.commit()
    assert conversation.id is not None
    version = conversation.version
    with _statements(db) as sent, pytest.raises(IllegalTransition, match="waiting -> bot"):
        await support._move(
            db, conversation.id, ConversationMode.BOT, {ConversationMode.WAITING: true()}, {}
        )
    assert sent == []
    await db.commit()
    again = await db.get(Conversation, conversation.id, populate_existing=True)
    assert again is not None
    assert (again.mode, again.version) == (ConversationMode.WAITING, version)


def _drawn(name: str) -> tuple[set[tuple[str, str]], set[str]]:
    """The moves and initial statuses of the README's diagram marked `%% <name>`."""
    blocks = re.findall(r"```mermaid\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    (block,) = [b for b in blocks if f"%% {name}\n" in b]
    assert block.startswith("stateDiagram-v2\n")
    moves: set[tuple[str, str]] = set()
    initial: set[str] = set()
    for before, after in re.findall(r"^\s*(\S+) --> (\S+?)(?:\s*:.*)?$", block, re.M):
        if before == "[*]":
            initial.add(after)
        elif after != "[*]":
            moves.add((before, after))
    return moves, initial


@pytest.mark.parametrize("name", TABLES)
def test_the_readme_draws_each_table(name: str) -> None:
    table, _, _, _ = TABLES[name]
    moves = {(str(a), str(b)) for a, targets in table.moves.items() for b in targets}
    assert _drawn(name) == (moves, {str(s) for s in table.initial})

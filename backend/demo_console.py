"""What the demo adds for the console: two staff accounts, a month of history, a queue.

Development only (the demo database is reset on every `chargebot demo`): the history is
made-up sessions on the demo network, and the accounts have a published password.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, func, select

from backend.models import ChargingSession, Driver, StaffUser
from backend.services import drivers, support
from backend.services.demo_history import seed_history
from backend.services.staff import create_staff
from bot.messages import ChannelUser, Inbound

DEMO_STAFF_PASSWORD = "demo-console-password"
DEMO_STAFF = (
    ("support@chargebot.invalid", "Lena Holm", "support"),
    ("operator@chargebot.invalid", "Olle Berg", "operator"),
)
HISTORY_DAYS = 30
# The driver who waits in the demo's support queue (by SMS): not one of the demo chat's drivers,
# so `chargebot demo --sms +46701234567` starts with a chat of its own.
QUEUED_SMS_DRIVER = {"name": "Karin Ek", "phone": "+46705550142", "language": "sv"}


async def seed_console(db: AsyncSession) -> None:
    """The demo's staff accounts and, on an empty history, 30 days of completed sessions."""
    for email, name, role in DEMO_STAFF:
        exists = await db.scalar(select(col(StaffUser.id)).where(col(StaffUser.email) == email))
        if exists is None:
            await create_staff(db, email=email, name=name, role=role, password=DEMO_STAFF_PASSWORD)
    phone = QUEUED_SMS_DRIVER["phone"]
    if await db.scalar(select(col(Driver.id)).where(col(Driver.phone) == phone)) is None:
        await drivers.create_driver(db, {**QUEUED_SMS_DRIVER, "billing": "invoice"}, "SE")
    sessions = await db.scalar(select(func.count(col(ChargingSession.id))))
    if not sessions:
        await seed_history(db, days=HISTORY_DAYS)
        await db.commit()


async def queue_examples(app: Any) -> None:
    """Two drivers in the support queue, escalated through the real chat flows (once)."""
    from bot.adapters.sms import SmsConversations

    async with app.state.sessions() as db:
        if await support.queue(db):
            return

    # An SMS driver asks something the FAQ cannot answer and takes the offer of a person.
    sms = SmsConversations(app.state.sessions, app.state.chat_engine)
    phone = QUEUED_SMS_DRIVER["phone"]
    await sms.handle(phone, "Får jag ladda med släpvagn kopplad vid Kungsgatan?")
    await sms.handle(phone, "1")  # 1: talk to a person
    # A Telegram driver in English asks for a person straight away.
    user = ChannelUser(telegram_user_id=5550143, name="Emma Clarke", language_code="en")
    engine = app.state.chat_engine
    address = str(user.telegram_user_id)
    await engine.handle(
        Inbound("telegram", address, text="The cable is stuck in my car", user=user)
    )
    await engine.handle(Inbound("telegram", address, command="support", user=user))


def banner_lines(base: str) -> list[str]:
    lines = [f"  console       {base}/console   (password for both: {DEMO_STAFF_PASSWORD})"]
    lines += [f"                {role:<9} {email}" for email, _, role in DEMO_STAFF]
    return lines

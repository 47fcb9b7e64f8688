"""The console as a browser uses it: the login form, its CSRF token, a queued chat."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from backend.models import Conversation
from tests.helpers.chat import chat_driver
from tests.helpers.support import PASSWORD

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text[:500]
    return found.group(1)


async def console_login(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    """Log in through the form like a browser; the CSRF token of the session's pages."""
    form = await http.get("/console/login")
    assert form.status_code == 200
    response = await http.post(
        "/console/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(form), "next": ""},
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/console/queue"
    queue = await http.get("/console/queue")
    assert queue.status_code == 200
    return csrf_of(queue)


async def conversation_of(db: AsyncSession, channel: str, address: str) -> Conversation:
    conversation = await db.scalar(
        select(Conversation).where(
            col(Conversation.channel) == channel, col(Conversation.address) == address
        )
    )
    assert conversation is not None
    return conversation


async def queued_driver(app: FastAPI, phone: str = "+46701112233", name: str = "Anna") -> int:
    """A driver asks for a person on the console channel; the conversation's id."""
    driver = chat_driver(app, phone=phone, name=name)
    await driver.command("support")
    async with app.state.sessions() as db:
        conversation = await conversation_of(db, "console", phone)
    assert conversation.mode == "waiting"
    assert conversation.id is not None
    return conversation.id

"""Support staff through the admin API: accounts, bearer tokens, the queue."""

from __future__ import annotations

from typing import Any

import httpx

PASSWORD = "correct horse battery"


async def add_staff(
    admin: httpx.AsyncClient, email: str, role: str, name: str | None = None
) -> dict[str, Any]:
    body = {"email": email, "name": name or email.split("@")[0].title(), "role": role}
    response = await admin.post("/admin/staff", json={**body, "password": PASSWORD})
    assert response.status_code == 201, response.text
    staff: dict[str, Any] = response.json()
    return staff


async def login(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    response = await http.post("/auth/token", data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "bearer"
    token: str = response.json()["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def agent(admin: httpx.AsyncClient, email: str, role: str = "support") -> dict[str, str]:
    await add_staff(admin, email, role)
    return bearer(await login(admin, email))


async def conversation_id(http: httpx.AsyncClient, headers: dict[str, str], address: str) -> int:
    queue = (await http.get("/support/queue", headers=headers)).json()
    found = [item["conversation_id"] for item in queue if item["address"] == address]
    assert found, queue
    return int(found[0])


async def queue(http: httpx.AsyncClient, staff: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await http.get("/support/queue", headers=staff)).json()
    return items


async def the_conversation(
    http: httpx.AsyncClient, staff: dict[str, str], address: str
) -> dict[str, Any]:
    """The queued conversation with `address`, as the staff member sees it, and its queue entry."""
    [item] = [i for i in await queue(http, staff) if i["address"] == address]
    body: dict[str, Any] = (
        await http.get(f"/support/conversations/{item['conversation_id']}", headers=staff)
    ).json()
    return {**body, "queued": item}

"""A stand-in for the Telegram Bot API at PTB's network boundary: records calls, answers like
Telegram, never touches the network.

`RecordingRequest` is a `telegram.request.BaseRequest`: python-telegram-bot builds every Bot API
call as usual and hands it to `do_request`, which records the method and its decoded parameters
and answers with the JSON Telegram would send. Like the real API it rejects what Telegram
rejects (empty or too long texts, oversized callback data, editing a message that does not
exist, an edit that changes nothing), so rendering mistakes fail the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from telegram.request import BaseRequest, RequestData

BOT_ID = 7_000_000_001
UPDATE_IDS = itertools.count(500_000_001)
CALLBACK_IDS = itertools.count(1)


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    result: Any = None  # what Telegram answered (a Message for sendMessage), None on failure


@dataclass
class _Failure:
    status: int | None  # None: the connection fails
    description: str


class RecordingRequest(BaseRequest):
    """Records every Bot API call in `calls` and answers it like Telegram would."""

    def __init__(self, username: str = "chargebot_test_bot") -> None:
        self.username = username
        self.calls: list[Call] = []
        self._message_ids = itertools.count(1001)
        self._messages: dict[tuple[int, int], tuple[str, Any]] = {}
        self._failures: dict[str, deque[_Failure]] = {}
        self._updates: asyncio.Queue[dict[str, Any]] | None = None

    # BaseRequest

    @property
    def read_timeout(self) -> float | None:
        return 5.0

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        api_method = url.rsplit("/", 1)[-1]
        params = json.loads(json.dumps(request_data.parameters)) if request_data else {}
        queued = self._failures.get(api_method)
        if queued:
            failure = queued.popleft()
            self.calls.append(Call(api_method, params))
            if failure.status is None:
                raise ConnectionError(failure.description)
            return _error(failure.status, failure.description)
        if api_method == "getUpdates":
            return await self._get_updates(params)  # not recorded: polled continuously
        call = Call(api_method, params)
        self.calls.append(call)
        handler = getattr(self, f"_{api_method}", None)
        if handler is None:
            return _error(404, "Not Found")
        status, result = handler(params)
        if status != 200:
            return _error(status, result)
        call.result = result
        return 200, json.dumps({"ok": True, "result": result}).encode()

    # test controls

    def fail(
        self,
        method: str,
        status: int | None = 502,
        description: str = "Bad Gateway",
        times: int = 1,
    ) -> None:
        """Make the next `times` calls of `method` fail (status None: no connection)."""
        queue = self._failures.setdefault(method, deque())
        queue.extend(_Failure(status, description) for _ in range(times))

    def push_update(self, update: dict[str, Any]) -> None:
        """Hand an update to long polling (getUpdates)."""
        if self._updates is None:
            self._updates = asyncio.Queue()
        self._updates.put_nowait(update)

    # what was called

    def of(self, method: str, chat_id: int | None = None) -> list[dict[str, Any]]:
        return [
            c.params
            for c in self.calls
            if c.method == method and (chat_id is None or c.params.get("chat_id") == chat_id)
        ]

    def sent(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """The sendMessage parameters, in order."""
        return self.of("sendMessage", chat_id)

    def messages(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """The Messages sent (as Telegram returned them), in order."""
        return [
            c.result
            for c in self.calls
            if c.method == "sendMessage"
            and c.result is not None
            and (chat_id is None or c.params.get("chat_id") == chat_id)
        ]

    def texts(self, chat_id: int | None = None) -> list[str]:
        return [p["text"] for p in self.sent(chat_id)]

    def edits(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        return self.of("editMessageText", chat_id)

    # the Bot API

    def bot_user(self) -> dict[str, Any]:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "Chargebot",
            "username": self.username,
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _getMe(self, params: dict[str, Any]) -> tuple[int, Any]:
        return 200, self.bot_user()

    def _sendMessage(self, params: dict[str, Any]) -> tuple[int, Any]:
        problem = _check_text(params) or _check_markup(params.get("reply_markup"))
        if problem:
            return 400, problem
        chat_id = int(params["chat_id"])
        message_id = next(self._message_ids)
        self._messages[(chat_id, message_id)] = (params["text"], params.get("reply_markup"))
        return 200, self._message(chat_id, message_id, params)

    def _editMessageText(self, params: dict[str, Any]) -> tuple[int, Any]:
        problem = _check_text(params) or _check_markup(params.get("reply_markup"))
        if problem:
            return 400, problem
        key = (int(params["chat_id"]), int(params["message_id"]))
        if key not in self._messages:
            return 400, "Bad Request: message to edit not found"
        if self._messages[key] == (params["text"], params.get("reply_markup")):
            return 400, (
                "Bad Request: message is not modified: specified new message content and "
                "reply markup are exactly the same as a current content and reply markup of the "
                "message"
            )
        self._messages[key] = (params["text"], params.get("reply_markup"))
        return 200, self._message(*key, params, edited=True)

    def _answerCallbackQuery(self, params: dict[str, Any]) -> tuple[int, Any]:
        return 200, True

    def _setMyCommands(self, params: dict[str, Any]) -> tuple[int, Any]:
        return 200, True

    def _setWebhook(self, params: dict[str, Any]) -> tuple[int, Any]:
        if not str(params.get("url", "")).startswith("https://"):
            return 400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
        return 200, True

    def _deleteWebhook(self, params: dict[str, Any]) -> tuple[int, Any]:
        return 200, True

    async def _get_updates(self, params: dict[str, Any]) -> tuple[int, bytes]:
        if self._updates is None:
            self._updates = asyncio.Queue()
        offset = int(params.get("offset") or 0)
        wait = min(float(params.get("timeout") or 0), 0.2)
        updates: list[dict[str, Any]] = []
        with contextlib.suppress(TimeoutError):
            updates.append(await asyncio.wait_for(self._updates.get(), wait or 0.01))
        while not self._updates.empty():
            updates.append(self._updates.get_nowait())
        fresh = [u for u in updates if u["update_id"] >= offset]
        return 200, json.dumps({"ok": True, "result": fresh}).encode()

    def _message(
        self, chat_id: int, message_id: int, params: dict[str, Any], *, edited: bool = False
    ) -> dict[str, Any]:
        now = int(time.time())
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": self.bot_user(),
            "chat": {"id": chat_id, "type": "private", "first_name": "Driver"},
            "date": now,
            "text": params["text"],
        }
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup  # Telegram echoes inline keyboards only
        if edited:
            message["edit_date"] = now
        return message


def _error(status: int, description: str) -> tuple[int, bytes]:
    body = {"ok": False, "error_code": status, "description": description}
    return status, json.dumps(body).encode()


def _check_text(params: dict[str, Any]) -> str | None:
    text = params.get("text", "")
    if not text.strip():
        return "Bad Request: message text is empty"
    if len(text) > 4096:
        return "Bad Request: message is too long"
    return None


def _check_markup(markup: Any) -> str | None:
    if not isinstance(markup, dict):
        return None
    for row in markup.get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(data.encode()) <= 64:
                return "Bad Request: BUTTON_DATA_INVALID"
            if not button.get("text"):
                return "Bad Request: text buttons are unallowed in the inline keyboard"
    return None


# --- updates as Telegram posts them -----------------------------------------------------------


def telegram_user(
    user_id: int,
    first_name: str = "Anna",
    last_name: str | None = "Lindqvist",
    language_code: str | None = "sv",
) -> dict[str, Any]:
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if last_name:
        user["last_name"] = last_name
    if language_code:
        user["language_code"] = language_code
    return user


def _private_chat(user: dict[str, Any]) -> dict[str, Any]:
    chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
    if "last_name" in user:
        chat["last_name"] = user["last_name"]
    return chat


_MESSAGE_IDS = itertools.count(1)


def message_update(
    user: dict[str, Any],
    text: str | None = None,
    *,
    update_id: int | None = None,
    field_name: str = "message",
    **content: Any,
) -> dict[str, Any]:
    """An update with a new message from `user` in their private chat with the bot."""
    message: dict[str, Any] = {
        "message_id": next(_MESSAGE_IDS),
        "from": user,
        "chat": _private_chat(user),
        "date": int(time.time()),
        **content,
    }
    if text is not None:
        message["text"] = text
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"offset": 0, "length": len(command), "type": "bot_command"}]
    return {"update_id": update_id or next(UPDATE_IDS), field_name: message}


def location_update(user: dict[str, Any], latitude: float, longitude: float) -> dict[str, Any]:
    return message_update(user, location={"latitude": latitude, "longitude": longitude})


def callback_update(
    user: dict[str, Any], data: str, message: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A press on an inline button of `message` (a sendMessage result; a stand-in if None)."""
    pressed = message or {
        "message_id": 1,
        "from": {"id": BOT_ID, "is_bot": True, "first_name": "Chargebot"},
        "chat": _private_chat(user),
        "date": int(time.time()),
        "text": "...",
    }
    return {
        "update_id": next(UPDATE_IDS),
        "callback_query": {
            "id": str(next(CALLBACK_IDS)),
            "from": user,
            "message": pressed,
            "chat_instance": "-1234567890123456789",
            "data": data,
        },
    }

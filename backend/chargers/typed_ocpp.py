"""Typed faces of the parts of the `ocpp` library this code builds on.

`ocpp` ships no type information, so mypy sees it as `Any`: under ``--strict`` a class cannot
subclass its `ChargePoint` (``disallow_subclassing_any``) and its `@on`/`@after` decorators
erase the handlers' signatures (``disallow_untyped_decorators``). Subclass and decorate with
the names here instead; at run time they are the library's own objects and functions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ocpp import routing

__all__ = ["ChargePoint", "after", "on"]

_Handler = TypeVar("_Handler", bound=Callable[..., Any])

if TYPE_CHECKING:

    class ChargePoint:
        """What mypy knows of `ocpp.v16.ChargePoint` (which is that class at run time)."""

        id: str
        route_map: dict[str, dict[str, Any]]
        logger: logging.Logger | logging.LoggerAdapter[Any]
        _connection: Any

        def __init__(
            self,
            id: str,
            connection: Any,
            response_timeout: float = 30,
            logger: logging.Logger | logging.LoggerAdapter[Any] = ...,
        ) -> None: ...

        async def start(self) -> None: ...

        async def route_message(self, raw_msg: str | bytes) -> None: ...

        async def call(
            self,
            payload: Any,
            suppress: bool = True,
            unique_id: str | None = None,
            skip_schema_validation: bool = False,
        ) -> Any: ...

        async def _send(self, message: str) -> None: ...

else:
    from ocpp.v16 import ChargePoint


def on(action: str, *, skip_schema_validation: bool = False) -> Callable[[_Handler], _Handler]:
    """`ocpp.routing.on`: the decorated method answers CALLs of `action`."""
    decorator: Callable[[_Handler], _Handler] = routing.on(
        action, skip_schema_validation=skip_schema_validation
    )
    return decorator


def after(action: str) -> Callable[[_Handler], _Handler]:
    """`ocpp.routing.after`: the decorated method runs once a CALL of `action` is answered."""
    decorator: Callable[[_Handler], _Handler] = routing.after(action)
    return decorator

"""No route of ours hands work to FastAPI's thread pool behind the operator's back.

FastAPI runs a plain `def` endpoint or dependency in a worker thread: for a dependency that
only reads `app.state` that is a hand-off and a wake-up per request, each waiting its turn on
an event loop busy with thousands of chargers. Routes and dependencies are `async def`;
blocking work (password hashing) goes to a thread explicitly, where the code says so.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import OAuth2PasswordRequestForm

from backend.app import create_app
from backend.settings import Settings

# FastAPI's own form model of POST /auth/token: a class, built per login request.
ALLOWED_IN_THREADS: frozenset[Any] = frozenset({OAuth2PasswordRequestForm})


def _routes(routes: list[Any]) -> Iterator[Any]:
    """Every route, including those of included routers (FastAPI keeps them wrapped)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _routes(inner.routes)
        else:
            yield route


def _runs_on_the_loop(call: Any) -> bool:
    target = call if inspect.isfunction(call) or inspect.ismethod(call) else call.__call__
    return inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target)


def _threaded(dependant: Dependant) -> Iterator[str]:
    for dependency in dependant.dependencies:
        call = dependency.call
        if call is not None and call not in ALLOWED_IN_THREADS and not _runs_on_the_loop(call):
            yield f"{getattr(call, '__module__', '?')}.{getattr(call, '__qualname__', call)}"
        yield from _threaded(dependency)


def test_every_route_and_dependency_runs_on_the_event_loop(settings: Settings) -> None:
    app = create_app(settings)
    api_routes = [route for route in _routes(app.routes) if isinstance(route, APIRoute)]
    assert len(api_routes) > 50  # the walk reached the included routers
    assert any(route.path.endswith("/remote-start") for route in api_routes)
    threaded = {
        f"{route.path}: {name}" for route in api_routes for name in _threaded(route.dependant)
    }
    threaded |= {
        f"{route.path}: the endpoint"
        for route in api_routes
        if not _runs_on_the_loop(route.endpoint)
    }
    assert not threaded, sorted(threaded)


def test_the_check_sees_a_plain_def_dependency() -> None:
    """The walk itself: a `def` dependency is reported, an `async def` one is not."""
    from fastapi import Depends, FastAPI

    def plain() -> int:
        return 1

    async def awaited() -> int:
        return 2

    app = FastAPI()

    @app.get("/x")
    async def x(a: int = Depends(plain), b: int = Depends(awaited)) -> int:
        return a + b

    route = next(r for r in app.routes if isinstance(r, APIRoute))
    assert [name.rsplit(".", 1)[-1] for name in _threaded(route.dependant)] == ["plain"]

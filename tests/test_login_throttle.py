"""Staff login under attack: back-off per account and per address, the same argon2 work for
every kind of wrong login, hashing off the event loop with a bounded queue, and the login
form's `__Host-` CSRF cookie. Clocks are injected; nothing here sleeps or times anything.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from backend.app import create_app
from backend.console import session as console_session
from backend.services import passwords, staff
from backend.services.login_throttle import (
    ACCOUNT_RULE,
    ADDRESS_RULE,
    BackoffRule,
    LoginThrottle,
    MemoryCounters,
    RedisCounters,
)
from backend.services.passwords import PasswordCheckBusyError, PasswordVerifier
from backend.settings import Settings
from tests.helpers.server import ADMIN_TOKEN
from tests.helpers.support import PASSWORD, add_staff

LENA = "lena@example.se"
HERE = "127.0.0.1"  # request.client.host of httpx's ASGI transport


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- the rule ----------------------------------------------------------------------------------


def test_the_lock_doubles_after_the_free_failures_and_is_capped() -> None:
    rule = BackoffRule(free_failures=5, first_lock=1.0, max_lock=900.0)
    assert [rule.lock_after(n) for n in range(1, 10)] == [0, 0, 0, 0, 1, 2, 4, 8, 16]
    assert rule.lock_after(15) == 900.0
    assert rule.lock_after(10_000) == 900.0


async def test_five_failures_lock_the_account_and_a_success_clears_it() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(clock=clock)
    for _ in range(4):
        await throttle.failed(LENA, "10.0.0.1")
    assert await throttle.retry_after(LENA, "10.0.0.1") == 0
    await throttle.failed(LENA, "10.0.0.1")
    assert await throttle.retry_after(LENA, "10.0.0.1") == 1
    # The account is locked from any address, whatever the spelling of the email.
    assert await throttle.retry_after("  LENA@Example.se ", "10.9.9.9") == 1
    clock.advance(1)
    assert await throttle.retry_after(LENA, "10.0.0.1") == 0
    await throttle.failed(LENA, "10.0.0.1")
    assert await throttle.retry_after(LENA, "10.0.0.1") == 2
    clock.advance(2)
    await throttle.succeeded(LENA, "10.0.0.1")
    await throttle.failed(LENA, "10.0.0.1")
    assert await throttle.retry_after(LENA, "10.0.0.1") == 0  # counting starts afresh


async def test_repeated_failures_reach_the_fifteen_minute_cap() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(clock=clock)
    waits = []
    for _ in range(20):
        clock.advance(await throttle.retry_after(LENA, "10.0.0.1"))
        await throttle.failed(LENA, "10.0.0.1")
        waits.append(await throttle.retry_after(LENA, "10.0.0.1"))
    assert waits[4:12] == [1, 2, 4, 8, 16, 32, 64, 128]
    assert max(waits) == waits[-1] == 15 * 60


async def test_one_address_trying_many_accounts_is_locked() -> None:
    throttle = LoginThrottle(clock=FakeClock())
    for n in range(ADDRESS_RULE.free_failures):
        await throttle.failed(f"guess{n}@example.se", "203.0.113.9")
    assert await throttle.retry_after("another@example.se", "203.0.113.9") == 1
    assert await throttle.retry_after("another@example.se", "198.51.100.1") == 0


async def test_a_success_does_not_buy_the_address_more_guesses() -> None:
    throttle = LoginThrottle(clock=FakeClock())
    for n in range(ADDRESS_RULE.free_failures - 1):
        await throttle.failed(f"guess{n}@example.se", "203.0.113.9")
    await throttle.succeeded("mine@example.se", "203.0.113.9")
    await throttle.failed("guess@example.se", "203.0.113.9")
    assert await throttle.retry_after("x@example.se", "203.0.113.9") == 1


async def test_old_failures_are_forgotten() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(clock=clock)
    for _ in range(ACCOUNT_RULE.free_failures - 1):
        await throttle.failed(LENA, "10.0.0.1")
    clock.advance(ACCOUNT_RULE.forget_after + 1)
    await throttle.failed(LENA, "10.0.0.1")
    assert await throttle.retry_after(LENA, "10.0.0.1") == 0


async def test_memory_counters_stay_bounded() -> None:
    counters = MemoryCounters(max_keys=3)
    for n in range(10):
        await counters.failed(f"k{n}", 0.0, BackoffRule(free_failures=1))
    assert [await counters.locked_until(f"k{n}") for n in range(10)] == [0.0] * 7 + [1.0] * 3


async def test_processes_sharing_redis_count_the_same_failures(
    redis_url: str, redis_prefix: str
) -> None:
    clock = FakeClock()
    one = LoginThrottle(RedisCounters(redis_url, redis_prefix), clock=clock)
    two = LoginThrottle(RedisCounters(redis_url, redis_prefix), clock=clock)
    try:
        for throttle in [one, two, one, two]:
            await throttle.failed(LENA, "10.0.0.1")
        assert await one.retry_after(LENA, "10.0.0.1") == 0
        await two.failed(LENA, "10.0.0.1")
        assert await one.retry_after(LENA, "10.0.0.1") == 1
        clock.advance(1)
        await one.failed(LENA, "10.0.0.1")
        assert await two.retry_after(LENA, "10.0.0.1") == 2
        await two.succeeded(LENA, "10.0.0.1")
        assert await one.retry_after(LENA, "10.0.0.9") == 0
    finally:
        await one.close()
        await two.close()


async def test_a_redis_outage_never_locks_anyone_out() -> None:
    throttle = LoginThrottle(RedisCounters("redis://127.0.0.1:1/0", "x:"), clock=FakeClock())
    try:
        for _ in range(10):
            await throttle.failed(LENA, "10.0.0.1")
        assert await throttle.retry_after(LENA, "10.0.0.1") == 0
    finally:
        await throttle.close()


async def burst_after_a_lock(throttle: LoginThrottle, clock: FakeClock) -> list[int]:
    """Lock the account, wait the lock out, then 17 attempts at once: their waits."""
    for _ in range(ACCOUNT_RULE.free_failures):
        await throttle.failed(LENA, "10.0.0.1")
    clock.advance(await throttle.retry_after(LENA, "10.0.0.1"))
    attempts = await asyncio.gather(*[throttle.begin(LENA, "10.0.0.1") for _ in range(17)])
    return [a.retry_after for a in attempts]


async def test_parallel_attempts_after_a_lock_let_one_through_in_memory() -> None:
    clock = FakeClock()
    waits = await burst_after_a_lock(LoginThrottle(clock=clock), clock)
    assert sorted(waits) == [0] + [2] * 16


async def test_parallel_attempts_after_a_lock_let_one_through_with_redis(
    redis_url: str, redis_prefix: str
) -> None:
    clock = FakeClock()
    throttles = [LoginThrottle(RedisCounters(redis_url, redis_prefix), clock=clock) for _ in "ab"]
    try:
        waits = await burst_after_a_lock(throttles[0], clock)
        assert sorted(waits) == [0] + [2] * 16
        assert (await throttles[1].begin(LENA, "10.0.0.2")).retry_after == 2  # shared
    finally:
        for throttle in throttles:
            await throttle.close()


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_an_attempt_given_back_leaves_the_counters_as_they_were(
    store: str, request: pytest.FixtureRequest
) -> None:
    """A right password (or no check at all) costs neither the account nor the address."""
    clock = FakeClock()
    counters: MemoryCounters | RedisCounters = MemoryCounters()
    if store == "redis":
        counters = RedisCounters(
            request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
        )
    throttle = LoginThrottle(counters, clock=clock)
    try:
        for _ in range(ACCOUNT_RULE.free_failures - 1):
            await throttle.failed(LENA, "10.0.0.1")
        attempt = await throttle.begin(LENA, "10.0.0.1")  # the fifth: locks while it checks
        assert attempt.retry_after == 0
        assert await throttle.retry_after(LENA, "10.0.0.1") == 1
        await throttle.give_back(attempt)
        assert await throttle.retry_after(LENA, "10.0.0.1") == 0  # the lock it set is lifted
        await throttle.failed(LENA, "10.0.0.1")  # and it was not counted
        assert await throttle.retry_after(LENA, "10.0.0.1") == 1
        # An attempt that fails stays counted: begin alone is the failure.
        clock.advance(1)
        assert (await throttle.begin(LENA, "10.0.0.1")).retry_after == 0
        assert await throttle.retry_after(LENA, "10.0.0.1") == 2
    finally:
        if isinstance(counters, RedisCounters):
            await counters.close()


async def test_a_redis_outage_lets_every_attempt_through() -> None:
    throttle = LoginThrottle(RedisCounters("redis://127.0.0.1:1/0", "x:"), clock=FakeClock())
    try:
        attempts = [await throttle.begin(LENA, "10.0.0.1") for _ in range(10)]
        assert [a.retry_after for a in attempts] == [0] * 10
        await throttle.give_back(attempts[0])
    finally:
        await throttle.close()


# --- the login endpoints -----------------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def clocked_app(settings: Settings, clock: FakeClock) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    app.state.login_throttle = LoginThrottle(clock=clock)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def http(clocked_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=clocked_app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        yield client


@pytest.fixture
async def operator_api(clocked_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=clocked_app)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="https://testserver", headers=headers
    ) as client:
        yield client


async def token(http: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await http.post("/auth/token", data={"username": email, "password": password})


async def test_the_api_answers_429_with_retry_after_and_lets_in_after_the_wait(
    http: httpx.AsyncClient, operator_api: httpx.AsyncClient, clock: FakeClock
) -> None:
    await add_staff(operator_api, LENA, "support")
    for _ in range(ACCOUNT_RULE.free_failures):
        assert (await token(http, LENA, "wrong password")).status_code == 401
    locked = await token(http, LENA, PASSWORD)  # even the right password waits
    assert locked.status_code == 429
    assert locked.headers["retry-after"] == "1"
    assert "try again in 1 s" in locked.json()["detail"]
    clock.advance(1)
    assert (await token(http, LENA, PASSWORD)).status_code == 200
    for _ in range(ACCOUNT_RULE.free_failures - 1):  # the success cleared the account
        assert (await token(http, LENA, "wrong password")).status_code == 401


async def test_a_burst_of_parallel_guesses_after_a_lock_gets_one_check_not_seventeen(
    http: httpx.AsyncClient,
    operator_api: httpx.AsyncClient,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Counting after the check let 17 guesses sent at once all be checked once a lock ran
    out; each attempt now counts before its check, so the first one locks out the rest."""
    await add_staff(operator_api, LENA, "support")
    for _ in range(ACCOUNT_RULE.free_failures):
        assert (await token(http, LENA, "wrong password")).status_code == 401
    clock.advance(1)  # the lock has run out
    checks: list[str] = []
    real_verify = passwords.verify_password_async

    async def counting(password_hash: str, password: str) -> bool:
        checks.append(password)
        return await real_verify(password_hash, password)

    monkeypatch.setattr(staff, "verify_password_async", counting)
    guesses = [f"guess {n}" for n in range(16)] + [PASSWORD]
    answers = await asyncio.gather(*[token(http, LENA, guess) for guess in guesses])
    statuses = sorted(answer.status_code for answer in answers)
    assert len(checks) == 1
    assert statuses.count(429) == 16
    assert statuses[0] in (200, 401)
    assert all(a.headers["retry-after"] == "2" for a in answers if a.status_code == 429)


async def test_unknown_emails_are_locked_like_real_ones(
    http: httpx.AsyncClient, operator_api: httpx.AsyncClient
) -> None:
    """A lock tells no one whether the account exists."""
    await add_staff(operator_api, LENA, "support")
    answers = {}
    for email in [LENA, "nobody@example.se"]:
        statuses = [(await token(http, email, "wrong")).status_code for _ in range(6)]
        answers[email] = statuses
    assert answers[LENA] == answers["nobody@example.se"] == [401] * 5 + [429]


async def test_the_console_login_shows_the_wait(
    http: httpx.AsyncClient, operator_api: httpx.AsyncClient, clock: FakeClock
) -> None:
    await add_staff(operator_api, LENA, "support")

    async def attempt(password: str) -> httpx.Response:
        form = await http.get("/console/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert csrf
        return await http.post(
            "/console/login",
            data={"email": LENA, "password": password, "csrf_token": csrf.group(1)},
            headers={"Accept-Language": "en"},
        )

    for _ in range(ACCOUNT_RULE.free_failures):
        assert (await attempt("wrong password")).status_code == 401
    locked = await attempt(PASSWORD)
    assert locked.status_code == 429
    assert locked.headers["retry-after"] == "1"
    assert "Too many failed logins. Try again in 1 s." in locked.text or (
        "Försök igen om 1 s." in locked.text
    )
    clock.advance(1)
    assert (await attempt(PASSWORD)).status_code == 303


# --- the same work for every wrong login ---------------------------------------------------


async def test_unknown_deactivated_and_wrong_logins_cost_one_argon2_check_each(
    http: httpx.AsyncClient, operator_api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_staff(operator_api, LENA, "support")
    omar = await add_staff(operator_api, "omar@example.se", "support")
    await operator_api.patch(f"/admin/staff/{omar['id']}", json={"active": False})
    checks: list[str] = []
    real_verify = passwords.verify_password_async

    async def counting(password_hash: str, password: str) -> bool:
        checks.append(password_hash)
        return await real_verify(password_hash, password)

    monkeypatch.setattr(staff, "verify_password_async", counting)
    for email, password in [
        ("nobody@example.se", PASSWORD),  # unknown
        ("omar@example.se", PASSWORD),  # deactivated, right password
        (LENA, "wrong password"),  # wrong
        (LENA, PASSWORD),  # right
    ]:
        checks.clear()
        expected = 200 if password == PASSWORD and email == LENA else 401
        assert (await token(http, email, password)).status_code == expected
        assert len(checks) == 1, email
        assert checks[0].startswith("$argon2id$")


async def test_argon2_runs_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[threading.Thread] = []
    real = passwords.verify_password

    def recording(password_hash: str, password: str) -> bool:
        threads.append(threading.current_thread())
        return real(password_hash, password)

    monkeypatch.setattr(passwords, "verify_password", recording)
    hashed = passwords.hash_password("a password")
    assert await passwords.verify_password_async(hashed, "a password")
    assert not await passwords.verify_password_async(hashed, "another")
    assert threads and all(t is not threading.main_thread() for t in threads)
    assert all(t.name.startswith("argon2") for t in threads)


async def test_a_flood_of_checks_waits_in_a_bounded_queue_and_the_rest_are_told_busy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()
    running = threading.Semaphore(0)

    def blocking(password_hash: str, password: str) -> bool:
        running.release()
        release.wait(10)
        return True

    monkeypatch.setattr(passwords, "verify_password", blocking)
    verifier = PasswordVerifier(workers=1, max_waiting=1)
    first = asyncio.create_task(verifier.verify("h", "p"))
    second = asyncio.create_task(verifier.verify("h", "p"))  # queued behind the first
    await asyncio.to_thread(running.acquire, True, 10)
    with pytest.raises(PasswordCheckBusyError):
        await verifier.verify("h", "p")
    release.set()
    assert await first and await second
    assert await verifier.verify("h", "p")  # room again


async def test_a_login_beyond_the_queue_is_told_to_retry_without_any_work(
    http: httpx.AsyncClient, operator_api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_staff(operator_api, LENA, "support")
    release = threading.Event()
    running = threading.Semaphore(0)
    real = passwords.verify_password

    def blocking(password_hash: str, password: str) -> bool:
        running.release()
        release.wait(10)
        return real(password_hash, password)

    monkeypatch.setattr(passwords, "verify_password", blocking)
    monkeypatch.setattr(passwords, "_verifier", PasswordVerifier(workers=1, max_waiting=0))
    first = asyncio.create_task(token(http, LENA, PASSWORD))
    await asyncio.to_thread(running.acquire, True, 10)
    busy = await token(http, LENA, PASSWORD)
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "1"
    assert "try again" in busy.json()["detail"]
    release.set()
    assert (await first).status_code == 200


# --- the login form's CSRF cookie --------------------------------------------------------------


def login_csrf_cookie(response: httpx.Response) -> str:
    return next(
        value
        for name, value in response.headers.multi_items()
        if name == "set-cookie" and "chargebot_login_csrf=" in value
    )


async def test_the_login_csrf_cookie_has_the_host_prefix_when_secure(
    http: httpx.AsyncClient,
) -> None:
    """Production (https): `__Host-` with Secure, Path=/ and no Domain, as browsers demand."""
    form = await http.get("/console/login")
    cookie = login_csrf_cookie(form)
    assert cookie.startswith("__Host-chargebot_login_csrf=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "Path=/;" in cookie + ";"
    assert "Domain" not in cookie


def test_a_plain_http_development_server_keeps_a_prefixless_login_cookie(
    settings: Settings,
) -> None:
    development = settings.model_copy(
        update={"environment": "development", "public_base_url": "http://127.0.0.1:8000"}
    )
    assert console_session.login_csrf_cookie_name(development) == "chargebot_login_csrf"
    https = development.model_copy(update={"public_base_url": "https://console.example.se"})
    assert console_session.login_csrf_cookie_name(https) == "__Host-chargebot_login_csrf"


async def test_the_development_console_logs_in_over_plain_http(
    settings: Settings,
) -> None:
    development = settings.model_copy(
        update={"environment": "development", "public_base_url": "http://127.0.0.1:8000"}
    )
    app = create_app(development)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as browser,
            httpx.AsyncClient(
                transport=transport, base_url="http://testserver", headers=headers
            ) as api,
        ):
            await add_staff(api, LENA, "support")
            form = await browser.get("/console/login")
            assert login_csrf_cookie(form).startswith("chargebot_login_csrf=")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert csrf
            response = await browser.post(
                "/console/login",
                data={"email": LENA, "password": PASSWORD, "csrf_token": csrf.group(1)},
            )
            assert response.status_code == 303
            assert (await browser.get("/console/queue")).status_code == 200

"""A stopped app is freed: nothing process-wide (a library's cache, a listener) keeps it alive.

One process can build many apps: the test suite builds one per test, a reload builds a new one.
An app kept alive keeps its database engine, FAQ index and caches, about 9 MB each; in the
suite that grew the process to 9 GB and stalled answers for seconds.
"""

from __future__ import annotations

import gc
import weakref

from backend.app import create_app
from backend.settings import Settings
from tests.helpers.sms import ANNA, sms_settings, twilio_app
from tests.helpers.twilio_double import RecordingTwilioClient


async def _serve_and_use(settings: Settings) -> weakref.ref[object]:
    """Serve an app, use its pages, SMS and admin API, stop it; a weak reference to it."""
    async with twilio_app(sms_settings(settings), RecordingTwilioClient()) as twilio:
        for page in ("/docs", "/redoc", "/docs/oauth2-redirect", "/healthz", "/readyz"):
            assert (await twilio.http.get(page)).status_code == 200, page
        assert (await twilio.http.get("/console/login")).status_code == 200
        assert (await twilio.live.http.get("/admin/stations")).status_code == 200
        reply = await twilio.text(ANNA, "MENU")
        assert reply is not None and "CHARGE <code>" in reply, reply
        return weakref.ref(twilio.live.app)


async def test_a_stopped_app_is_freed(settings: Settings) -> None:
    gone = await _serve_and_use(settings)
    gc.collect()
    app = gone()
    if app is not None:
        holders = [type(holder).__name__ for holder in gc.get_referrers(app)]
        raise AssertionError(f"the stopped app is still referenced by {holders}")


async def test_an_app_never_started_is_freed(settings: Settings) -> None:
    gone = weakref.ref(create_app(settings))
    gc.collect()
    assert gone() is None

"""POST /payments/stripe/webhook: Stripe's events, verified on the raw body; GET
/payments/done: where a payment page returns a driver who has no app to go back to (SMS)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from backend.api.deps import PaymentsDep
from backend.services.payments import PAYMENT_DONE_PATH, WebhookRejectedError, WebhookRetryError

router = APIRouter(tags=["payments"])

DONE_PAGE = """<!doctype html>
<html lang="sv"><head><meta charset="utf-8"><title>chargebot</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}</style>
</head><body><h1>chargebot</h1>
<p>Klart. Du kan stänga den här sidan; svaret kommer i chatten.</p>
<p>Done. You may close this page; the answer comes in the chat.</p>
</body></html>"""


@router.post("/payments/stripe/webhook")
async def stripe_webhook(request: Request, service: PaymentsDep) -> dict[str, bool]:
    """400 on a bad signature or a stale timestamp; 503 when Stripe could not be asked while
    handling the event (Stripe sends it again); 200 for an event handled, replayed, or
    signed but unusable (logged and ignored)."""
    if service is None:
        raise HTTPException(status_code=404, detail="card payments are not configured")
    payload = await request.body()
    try:
        await service.handle_webhook(payload, request.headers.get("stripe-signature"))
    except WebhookRejectedError as exc:
        raise HTTPException(status_code=400, detail=f"invalid webhook: {exc}") from exc
    except WebhookRetryError as exc:
        raise HTTPException(status_code=503, detail="try again later") from exc
    return {"received": True}


@router.get(PAYMENT_DONE_PATH, include_in_schema=False)
async def payment_done() -> HTMLResponse:
    """The return page of a payment page opened outside Telegram: nothing to do but close it."""
    return HTMLResponse(DONE_PAGE)

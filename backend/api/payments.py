"""POST /payments/stripe/webhook: Stripe's events, verified on the raw body."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from backend.services.payments import PaymentService, WebhookRejectedError, WebhookRetryError

router = APIRouter(tags=["payments"])


@router.post("/payments/stripe/webhook")
async def stripe_webhook(request: Request) -> dict[str, bool]:
    """400 on a bad signature or a stale timestamp; 503 when Stripe could not be asked while
    handling the event (Stripe sends it again); 200 for an event handled, replayed, or
    signed but unusable (logged and ignored)."""
    service: PaymentService | None = getattr(request.app.state, "payments", None)
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

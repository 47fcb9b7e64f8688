"""/demo/pay/{session}: the clearly labelled test payment page of the demo.

The page of the demo's payment gateway (backend/payments/demo_gateway.py): the driver's
answer goes to the payment service, which holds, starts and settles as with Stripe.
"""

from __future__ import annotations

from html import escape
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import HTMLResponse

from backend.models import PaymentStatus
from backend.services.errors import ConflictError, NotFoundError
from backend.services.payments import PaymentService

router = APIRouter(tags=["demo"], include_in_schema=False)

PAGE = """<!doctype html>
<html lang="sv"><head><meta charset="utf-8"><title>TEST PAYMENT - chargebot demo</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}}
.banner{{background:#b00020;color:#fff;padding:.8rem;font-weight:bold;text-align:center}}
button{{font-size:1.1rem;padding:.6rem 1.2rem;margin:.3rem}}</style></head>
<body><div class="banner">TESTBETALNING / TEST PAYMENT - inga riktiga pengar / no real money</div>
<h1>chargebot demo</h1>
<p>Laddning / Charging #{session_id}: {station}</p>
<p>Reservation / Hold: <strong>{amount}</strong>. Bara det laddningen kostar dras, resten
släpps. / Only the cost of the charge is captured; the rest is released.</p>
<p>Status: <strong>{status}</strong></p>
{actions}
</body></html>"""

ACTIONS = """<form method="post" action="/demo/pay/{session_id}/approve" style="display:inline">
<button>Godkänn testreservation / Approve test hold</button></form>
<form method="post" action="/demo/pay/{session_id}/cancel" style="display:inline">
<button>Avbryt / Cancel</button></form>"""


# A charging session's id: a positive database INTEGER (anything else is a 422, never a 500).
SessionId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _service(request: Request) -> PaymentService:
    service: PaymentService | None = getattr(request.app.state, "demo_payments", None)
    if service is None:
        raise HTTPException(status_code=404, detail="test payments exist only in the demo")
    return service


def _kr(minor: int) -> str:
    return f"{minor // 100},{minor % 100:02d} kr"


async def _render(request: Request, session_id: int) -> HTMLResponse:
    service = _service(request)
    try:
        session, payment = await service.own_page(session_id)
    except NotFoundError as error:
        raise HTTPException(status_code=404, detail=str(error)) from error
    actions = (
        ACTIONS.format(session_id=session_id) if payment.status == PaymentStatus.PENDING else ""
    )
    return HTMLResponse(
        PAGE.format(
            session_id=session_id,
            station=escape(session.charger_id),
            amount=_kr(service.hold_amount_minor),
            status=escape(f"{payment.status} (laddning / charging: {session.status})"),
            actions=actions,
        )
    )


@router.get("/demo/pay/{session_id}")
async def test_payment_page(request: Request, session_id: SessionId) -> HTMLResponse:
    return await _render(request, session_id)


@router.post("/demo/pay/{session_id}/approve")
async def approve_test_payment(request: Request, session_id: SessionId) -> HTMLResponse:
    try:
        await _service(request).approve_own_page(session_id)
    except NotFoundError as error:
        raise HTTPException(status_code=404, detail=str(error)) from error
    except ConflictError as error:
        raise HTTPException(status_code=409, detail=str(error)) from error
    return await _render(request, session_id)


@router.post("/demo/pay/{session_id}/cancel")
async def cancel_test_payment(request: Request, session_id: SessionId) -> HTMLResponse:
    try:
        await _service(request).cancel_own_page(session_id)
    except NotFoundError as error:
        raise HTTPException(status_code=404, detail=str(error)) from error
    except ConflictError as error:
        raise HTTPException(status_code=409, detail=str(error)) from error
    return await _render(request, session_id)

"""The operators' admin API under /admin: the admin token or an operator's staff token."""

from fastapi import APIRouter

from backend.api.admin import (
    access,
    chargers,
    drivers,
    faq,
    operations,
    reports,
    sessions,
    staff,
    stations,
)
from backend.api.deps import AdminDep

router = APIRouter(prefix="/admin", dependencies=[AdminDep])
router.include_router(stations.router)
router.include_router(chargers.router)
router.include_router(drivers.router)
router.include_router(sessions.router)
router.include_router(access.router)
router.include_router(operations.router)
router.include_router(faq.router)
router.include_router(reports.router)
router.include_router(staff.router)

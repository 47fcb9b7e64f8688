"""The operators' admin API under /admin: the admin token or an operator's staff token."""

from fastapi import APIRouter

from backend.api.admin import (
    access,
    audit,
    certificates,
    charger_jobs,
    chargers,
    configuration,
    drivers,
    faq,
    local_list,
    operations,
    reports,
    reservations,
    sessions,
    smart_charging,
    staff,
    stations,
)
from backend.api.deps import AdminDep, InputGuard

# The token first (401 for strangers), then input no database column can hold (422).
router = APIRouter(prefix="/admin", dependencies=[AdminDep, InputGuard])
router.include_router(stations.router)
router.include_router(chargers.router)
router.include_router(drivers.router)
router.include_router(sessions.router)
router.include_router(access.router)
router.include_router(operations.router)
router.include_router(configuration.router)
router.include_router(local_list.router)
router.include_router(reservations.router)
router.include_router(charger_jobs.router)
router.include_router(smart_charging.router)
router.include_router(certificates.router)
router.include_router(faq.router)
router.include_router(reports.router)
router.include_router(staff.router)
router.include_router(audit.router)

"""The control-plane API: every admin router under `/control-plane/api/v1`.

Each domain adds its router here with one line; app.py includes this router once.
"""

from __future__ import annotations

from fastapi import APIRouter

from cerberus.agents.routes import router as agents_router
from cerberus.audit.routes import router as audit_router
from cerberus.auth.routes import router as auth_router
from cerberus.changes.routes import router as changes_router
from cerberus.policies.pin_routes import router as pin_router
from cerberus.policies.routes import router as policies_router
from cerberus.tenancy.routes import router as tenancy_router

PREFIX = "/control-plane/api/v1"

router = APIRouter(prefix=PREFIX)
router.include_router(auth_router)
router.include_router(tenancy_router)
router.include_router(agents_router)
router.include_router(policies_router)
router.include_router(pin_router)
router.include_router(changes_router)
router.include_router(audit_router)

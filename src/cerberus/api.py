"""The control-plane API: every admin router under `/control-plane/api/v1`.

Each domain adds its router here with one line; app.py includes this router once.
"""

from __future__ import annotations

from fastapi import APIRouter

from cerberus.audit.routes import router as audit_router
from cerberus.auth.routes import router as auth_router

PREFIX = "/control-plane/api/v1"

router = APIRouter(prefix=PREFIX)
router.include_router(auth_router)
router.include_router(audit_router)

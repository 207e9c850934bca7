"""Health endpoints for load balancers (liveness) and operators (dependency checks).

Plain Starlette endpoints, served before the control plane: a load balancer's probe every
few seconds must not be what loads FastAPI into a process that only proxies
(`control_plane.py` lists them in the OpenAPI document).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cerberus import __version__

CHECK_TIMEOUT_SECONDS = 3.0


async def health(request: Request) -> JSONResponse:
    """Liveness: answers without touching any dependency."""
    body = {"status": "healthy", "timestamp": datetime.now(UTC).isoformat(), "version": __version__}
    return JSONResponse(body)


async def health_detailed(request: Request) -> JSONResponse:
    """Readiness: checks the database and the cache, 503 when either is down."""
    state = request.app.state

    async def database() -> None:
        async with state.engine.connect() as connection:
            # A read-only probe must not queue behind writers for SQLite's write lock.
            read_only = await connection.execution_options(sqlite_begin="DEFERRED")
            await read_only.execute(text("SELECT 1"))

    checks = {
        "database": await _timed(database()),
        "cache": await _timed(state.cache.ping()),
    }
    healthy = all(check["status"] == "healthy" for check in checks.values())
    body = {
        "status": "healthy" if healthy else "unhealthy",
        "timestamp": datetime.now(UTC).isoformat(),
        "version": __version__,
        "checks": checks,
    }
    return JSONResponse(body, status_code=200 if healthy else 503)


async def _timed(check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check, CHECK_TIMEOUT_SECONDS)
    except Exception as exc:
        return {
            "status": "unhealthy",
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            "error": type(exc).__name__,
        }
    return {"status": "healthy", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


routes = [
    Route("/health", health, methods=["GET"]),
    Route("/health/detailed", health_detailed, methods=["GET"]),
]

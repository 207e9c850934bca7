"""The control plane (admin API and its documentation), built on the first request for it.

One process serves both planes, but nearly all of its requests are proxied MCP calls,
which need none of FastAPI, the admin schemas or their routers: together ~13 MiB and
~0.2 s of imports (docs/benchmarks.md). A process loads them when it is first asked for a
control-plane path, in a worker thread so that proxied calls in flight keep being served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from cerberus import __version__
from cerberus.errors import CerberusError
from cerberus.settings import Settings
from cerberus.single_flight import run_once

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from sqlalchemy.exc import DBAPIError

logger = logging.getLogger("cerberus.control_plane")

# Paths the control plane answers; anything else is a 404 without loading it (scanners
# probing random paths would otherwise load it into every instance).
PREFIXES = ("/control-plane/", "/docs", "/redoc", "/openapi.json")
NOT_FOUND = {"detail": "Not Found"}


def is_control_plane(path: str) -> bool:
    return path == "/control-plane" or path.startswith(PREFIXES)


class ControlPlane:
    """An ASGI app that builds the FastAPI application once and hands it every request."""

    def __init__(self, settings: Settings, state: State) -> None:
        self._settings = settings
        self._state = state
        self._app: FastAPI | None = None
        self._building: dict[None, asyncio.Future[FastAPI]] = {}
        self._documenting: dict[None, asyncio.Future[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    @property
    def app(self) -> FastAPI:
        """The application, built now in this thread if no request has built it yet."""
        with self._lock:
            if self._app is None:
                started = time.perf_counter()
                self._app = build(self._settings, self._state)
                elapsed_ms = round((time.perf_counter() - started) * 1000)
                logger.info("control plane loaded", extra={"load_ms": elapsed_ms})
            return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not is_control_plane(scope["path"]):
            await JSONResponse(NOT_FOUND, status_code=404)(scope, receive, send)
            return
        app = self._app or await self._build_in_thread()
        if (
            app.openapi_schema is None
            and scope["type"] == "http"
            and scope["path"] == app.openapi_url
        ):
            # FastAPI builds its OpenAPI document in the handler, on the event loop: the
            # first /openapi.json (what /docs loads) held every request of the process,
            # proxied calls too, for ~0.15-0.5 s. Built here in a worker thread instead, the
            # handler finds it cached.
            await run_once(self._documenting, None, lambda: asyncio.to_thread(app.openapi))
        # FastAPI's error middleware answers an error (a JSON 500) and logs it through
        # `unexpected_error`, then re-raises it for the server: raised further, the outer
        # application's handler would log the same error a second time.
        with contextlib.suppress(Exception):
            await app(scope, receive, send)

    async def _build_in_thread(self) -> FastAPI:
        # Concurrent first requests share one build.
        return await run_once(self._building, None, lambda: asyncio.to_thread(lambda: self.app))


def build(settings: Settings, state: State) -> FastAPI:
    """FastAPI with every admin router, sharing the process's state (engine, cache, ...)."""
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from sqlalchemy.exc import DBAPIError

    from cerberus import api, health

    app = FastAPI(
        title="Cerberus",
        version=__version__,
        description="Governance gateway for the Model Context Protocol.",
        debug=settings.DEBUG,
        # FastAPI's native OpenTelemetry looks up the global providers on every request;
        # Cerberus exports nothing through it.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state = state
    app.add_exception_handler(CerberusError, _cerberus_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(DBAPIError, _database_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, unexpected_error)
    # Served by the outer application before this one; listed here for the OpenAPI document.
    app.add_api_route("/health", health.health, methods=["GET"], tags=["health"])
    app.add_api_route(
        "/health/detailed",
        health.health_detailed,
        methods=["GET"],
        tags=["health"],
        responses={503: {"description": "a dependency is down"}},
    )
    app.include_router(api.router)
    return app


async def _cerberus_error(request: Request, exc: CerberusError) -> JSONResponse:
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = []
    for error in exc.errors():
        location = [str(part) for part in error["loc"] if part not in ("body", "query", "path")]
        field = ".".join(location) or "body"
        errors.append({"field": field, "message": str(error["msg"]).removeprefix("Value error, ")})
    first = errors[0] if errors else {"field": "body", "message": "invalid request"}
    return JSONResponse(
        {"detail": f"{first['field']}: {first['message']}", "errors": errors}, status_code=422
    )


async def _database_error(request: Request, exc: DBAPIError) -> JSONResponse:
    """A value the database refused (SQLSTATE class 22, data exception: PostgreSQL's text
    refuses U+0000, in any name, id or filter) is the client's to fix: a 422, not a 500."""
    sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
    if not sqlstate.startswith("22"):
        return await unexpected_error(request, exc)
    logger.info("value refused by the database", extra={"sqlstate": sqlstate})
    detail = "a value was refused by the database (a NUL character, or out of range)"
    return JSONResponse({"detail": detail}, status_code=422)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled error", exc_info=exc)
    return JSONResponse({"detail": "internal error"}, status_code=500)

"""create_app(settings): the one place where the application is assembled and started."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from cerberus import __version__, api, health
from cerberus.agents.lookup import AgentLookup
from cerberus.audit.writer import AuditWriter
from cerberus.auth.bootstrap import bootstrap_superuser
from cerberus.cache import create_cache
from cerberus.db import create_engine, create_sessionmaker
from cerberus.errors import CerberusError
from cerberus.guardrails import guardrail_types
from cerberus.logs import RequestLogMiddleware, configure_logging
from cerberus.policies.compiled import PipelineCache
from cerberus.proxy.routes import is_direct, serve_direct
from cerberus.proxy.routes import routes as proxy_routes
from cerberus.proxy.sessions import SessionStore
from cerberus.proxy.upstream import UpstreamClient
from cerberus.settings import Settings, load_settings

logger = logging.getLogger("cerberus.app")


class CerberusApp(FastAPI):
    """FastAPI, with MCP requests sent to the proxy before FastAPI's own layers.

    Each middleware layer (error handling, telemetry, body limit, request log, CORS) is a
    coroutine and often a wrapped `send` per request; the proxy needs none of them but the
    request id and access line, which `serve_direct` gives it.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_direct(scope):
            scope["app"] = self
            await serve_direct(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.RUN_MIGRATIONS_ON_STARTUP:
            # Imported here: alembic and mako cost ~11 MiB, and `cerberus serve` migrates
            # before its workers start (it turns this off for them).
            from cerberus.migrate import upgrade

            await upgrade(settings)
        app.state.engine = create_engine(settings)
        app.state.sessionmaker = create_sessionmaker(app.state.engine)
        app.state.cache = create_cache(settings)
        await bootstrap_superuser(app.state.sessionmaker, settings)
        app.state.pipelines = PipelineCache(
            lambda: app.state.sessionmaker, app.state.cache, ttl_seconds=settings.CACHE_TTL_SECONDS
        )
        await app.state.pipelines.start()
        await _start_proxy(app, settings)
        # Imported now rather than by the first proxied call, so what they build is frozen too.
        guardrail_types()
        # What start-up allocated lives as long as the process: out of the cyclic collector's
        # generations, a full collection under load no longer walks it (p99 at concurrency 32
        # went from 82-98 to 27-30 ms, docs/benchmarks.md). No collect() first: it found 10
        # garbage objects among ~100,000 and cost 60-85 ms of every cold start.
        gc.freeze()
        try:
            yield
        finally:
            await _stop_proxy(app)
            await app.state.pipelines.close()
            await app.state.cache.close()
            await app.state.engine.dispose()

    app = CerberusApp(
        title="Cerberus",
        version=__version__,
        description="Governance gateway for the Model Context Protocol.",
        lifespan=lifespan,
        debug=settings.DEBUG,
        # FastAPI's native OpenTelemetry looks up the global providers on every request
        # (3.6 µs, /mcp included); Cerberus exports nothing through it.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.add_exception_handler(CerberusError, _cerberus_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_error)
    app.include_router(health.router)
    app.include_router(api.router)
    # First in the list: the proxy is the hot path, matched before any control-plane route.
    app.router.routes[0:0] = proxy_routes
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.CORS_ORIGINS,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=[
            "Mcp-Session-Id",
            "MCP-Protocol-Version",
            "X-Request-ID",
            "X-Request-Decision-ID",
            "X-Response-Decision-ID",
        ],
    )
    app.add_middleware(RequestLogMiddleware)
    return app


async def _start_proxy(app: FastAPI, settings: Settings) -> None:
    """The proxy's per-process parts: key lookup, sessions, upstream pool, audit writer."""
    app.state.agents = AgentLookup(
        lambda: app.state.sessionmaker, app.state.cache, ttl=settings.CACHE_TTL_SECONDS
    )
    await app.state.agents.start()
    app.state.sessions = SessionStore(app.state.cache)
    app.state.upstream = UpstreamClient(settings)
    app.state.audit = AuditWriter(
        lambda: app.state.sessionmaker,
        batch_size=settings.AUDIT_BATCH_SIZE,
        flush_interval=settings.AUDIT_FLUSH_INTERVAL_SECONDS,
    )
    app.state.audit.start()


async def _stop_proxy(app: FastAPI) -> None:
    # Requests have finished by now (uvicorn drains them first): write what they queued.
    try:
        await app.state.audit.stop()
    except Exception:
        logger.exception("audit events could not be written at shutdown")
    await app.state.upstream.close()
    await app.state.agents.close()


def app_from_env() -> FastAPI:
    """The factory uvicorn imports in each worker process (`cerberus serve`, the container)."""
    settings = load_settings()
    configure_logging(settings.LOG_LEVEL)
    return create_app(settings)


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


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled error", exc_info=exc)
    return JSONResponse({"detail": "internal error"}, status_code=500)

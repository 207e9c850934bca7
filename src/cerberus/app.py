"""create_app(settings): the one place where the application is assembled and started.

The application is Starlette: the proxy and the health checks are served by it, and the
control plane (FastAPI) is built by `control_plane.py` on the first request for it.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Receive, Scope, Send

from cerberus import health
from cerberus.agents.lookup import AgentLookup
from cerberus.audit.writer import AuditWriter
from cerberus.auth.bootstrap import bootstrap_superuser
from cerberus.cache import create_cache
from cerberus.client_address import trust_forwarded
from cerberus.control_plane import ControlPlane, unexpected_error
from cerberus.db import create_engine, create_sessionmaker
from cerberus.guardrails import guardrail_types
from cerberus.logs import RequestLogMiddleware, configure_logging
from cerberus.policies.compiled import PipelineCache
from cerberus.proxy.routes import is_direct, serve_direct
from cerberus.proxy.routes import routes as proxy_routes
from cerberus.proxy.sessions import SessionStore
from cerberus.proxy.upstream import UpstreamClient
from cerberus.settings import Settings, load_settings

logger = logging.getLogger("cerberus.app")


class AppState(State):
    """Starlette's State, whose values are also plain attributes of the object.

    State keeps them in a dict behind `__getattr__`, which Python calls only after the
    normal lookup has failed and built an AttributeError with its message: ~0.65 µs a read,
    and a proxied call reads the app's state eleven times (docs/benchmarks.md). Written
    through State as well, so its item access, iteration and length stay as they were.
    """

    def __setattr__(self, key: str, value: Any) -> None:
        super().__setattr__(key, value)
        self.__dict__[key] = value

    def __delattr__(self, key: str) -> None:
        super().__delattr__(key)
        del self.__dict__[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.__setattr__(key, value)

    def __delitem__(self, key: str) -> None:
        self.__delattr__(key)


class CerberusApp(Starlette):
    """Starlette, with MCP requests sent to the proxy before its middleware layers.

    Each middleware layer (error handling, request log, CORS) is a coroutine and often a
    wrapped `send` per request; the proxy needs none of them but the request id and access
    line, which `serve_direct` gives it.
    """

    control_plane: ControlPlane
    # Load balancers in front that append to X-Forwarded-For (TRUSTED_PROXY_HOPS); without
    # them, that header is the client's own to write and is never read.
    proxy_hops = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.proxy_hops and scope["type"] == "http":
            trust_forwarded(scope, self.proxy_hops)
        if scope["type"] == "http" and is_direct(scope):
            scope["app"] = self
            await serve_direct(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        """The control plane's OpenAPI document (building the control plane if need be)."""
        return self.control_plane.app.openapi()


def create_app(settings: Settings) -> CerberusApp:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
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

    cors = Middleware(
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
    app = CerberusApp(
        debug=settings.DEBUG,
        # The proxy first: it is the hot path, matched before anything else.
        routes=[*proxy_routes, *health.routes],
        middleware=[Middleware(RequestLogMiddleware), cors],
        exception_handlers={Exception: unexpected_error},
        lifespan=lifespan,
    )
    app.state = AppState()
    app.state.settings = settings
    app.proxy_hops = settings.TRUSTED_PROXY_HOPS
    app.control_plane = ControlPlane(settings, app.state)
    # Whatever the routes above do not match is the control plane's (or its 404).
    app.router.default = app.control_plane
    return app


async def _start_proxy(app: Starlette, settings: Settings) -> None:
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


async def _stop_proxy(app: Starlette) -> None:
    # Requests have finished by now (uvicorn drains them first): write what they queued.
    try:
        await app.state.audit.stop()
    except Exception:
        logger.exception("audit events could not be written at shutdown")
    await app.state.upstream.close()
    await app.state.agents.close()


def app_from_env() -> CerberusApp:
    """The factory uvicorn imports in each worker process (`cerberus serve`, the container)."""
    settings = load_settings()
    configure_logging(settings.LOG_LEVEL, service=settings.APP_NAME)
    return create_app(settings)

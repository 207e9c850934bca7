"""The control plane loads on its first request, once; the proxy and health checks never load it."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from cerberus.app import create_app
from cerberus.settings import Settings
from tests.conftest import TEST_SECRET_KEY
from tests.holding import Held, health_while_held

# Run in a fresh interpreter: this one has imported FastAPI for other tests long ago.
ONLY_PROXY_AND_HEALTH = """
import asyncio, sys
import httpx
from cerberus.app import create_app
from cerberus.settings import Settings

PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}

async def main():
    admin = {"CERBERUS_ADMIN_EMAIL": "root@example.com", "CERBERUS_ADMIN_PASSWORD": "long-enough-1"}
    settings = Settings(APP_ENV="test", DATA_DIR=sys.argv[1], LOG_LEVEL="WARNING", **admin)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            statuses = [
                (await http.get("/health")).status_code,
                (await http.get("/health/detailed")).status_code,
                (await http.post("/mcp", json=PING)).status_code,
                (await http.get("/wp-admin/setup.php")).status_code,
            ]
            missing = await http.get("/nothing-here")
    # FastAPI is the control plane's; the e-mail check and bcrypt serve only to create the
    # first super_admin, which a process does once, if at all.
    loaded = [name for name in ("fastapi", "email_validator", "bcrypt") if name in sys.modules]
    print(statuses, missing.json(), loaded)

asyncio.run(main())
"""


def test_proxy_and_health_requests_never_load_fastapi(tmp_path: Path) -> None:
    # The first start creates the super_admin named by the environment; later ones find it.
    outputs = []
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-c", ONLY_PROXY_AND_HEALTH, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        outputs.append(result.stdout.strip())
    answers = "[200, 200, 401, 404] {'detail': 'Not Found'}"
    assert outputs == [f"{answers} ['email_validator', 'bcrypt']", f"{answers} []"]


def _embedded(tmp_path: Path) -> Settings:
    # Its own SQLite file whatever the backend: one test below breaks its database.
    return Settings(APP_ENV="test", DATA_DIR=tmp_path, SECRET_KEY=TEST_SECRET_KEY)


async def test_concurrent_first_requests_build_the_control_plane_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(_embedded(tmp_path))
    caplog.set_level(logging.INFO, logger="cerberus.control_plane")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            answers = await asyncio.gather(
                *(http.get("/openapi.json") for _ in range(4)),
                http.post(
                    "/control-plane/api/v1/auth/login",
                    json={"email": "nobody@example.com", "password": "wrong-password"},
                ),
            )
    assert [answer.status_code for answer in answers] == [200, 200, 200, 200, 401]
    assert "/health" in answers[0].json()["paths"]
    loads = [record for record in caplog.records if record.getMessage() == "control plane loaded"]
    assert len(loads) == 1


async def test_the_openapi_document_is_built_while_other_requests_are_served(
    tmp_path: Path,
) -> None:
    # FastAPI builds the document in its handler, on the event loop: every request to the
    # process (proxied calls too) waited for it. Here its build is held until /health has
    # been answered; built on the loop, it would hold the loop, and /health, with it.
    app = create_app(_embedded(tmp_path))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            assert (await http.get("/control-plane/api/v1/auth/me")).status_code == 401
            fastapi_app = app.control_plane.app
            held = Held(fastapi_app.openapi)
            fastapi_app.openapi = held  # type: ignore[method-assign]
            health, answer = await health_while_held(http, held, http.get("/openapi.json"))
    assert health.status_code == 200
    assert held.waited == [True]
    assert answer.status_code == 200
    assert "/health" in answer.json()["paths"]


async def test_a_control_plane_bug_is_a_json_500_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(_embedded(tmp_path))
    async with app.router.lifespan_context(app):
        async with app.state.engine.begin() as connection:
            await connection.execute(text("DROP TABLE refresh_tokens"))
            await connection.execute(text("DROP TABLE users"))
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            answer = await http.post(
                "/control-plane/api/v1/auth/login",
                json={"email": "someone@example.com", "password": "a-password"},
            )
    assert answer.status_code == 500
    assert answer.json() == {"detail": "internal error"}
    logged = [record for record in caplog.records if record.getMessage() == "unhandled error"]
    assert len(logged) == 1

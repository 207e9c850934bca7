from __future__ import annotations

import socket

import httpx

from cerberus import __version__
from cerberus.app import create_app
from cerberus.settings import Settings
from tests.conftest import Backend, settings_for


async def test_health_answers_status_timestamp_and_version(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["version"] == __version__
    assert "T" in body["timestamp"]


async def test_detailed_health_reports_database_and_cache(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/detailed")
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert checks["database"]["status"] == "healthy"
    assert checks["cache"]["status"] == "healthy"
    assert checks["database"]["latency_ms"] >= 0


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _detailed(settings: Settings) -> httpx.Response:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.get("/health/detailed")


async def test_detailed_health_is_503_when_the_database_is_down(backend: Backend) -> None:
    url = f"postgresql+asyncpg://nobody@127.0.0.1:{closed_port()}/none"
    response = await _detailed(settings_for(backend, DATABASE_URL=url))
    assert response.status_code == 503
    assert response.json()["checks"]["database"]["status"] == "unhealthy"


async def test_detailed_health_is_503_when_the_cache_is_down(backend: Backend) -> None:
    response = await _detailed(
        settings_for(backend, REDIS_URL=f"redis://127.0.0.1:{closed_port()}")
    )
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["cache"]["status"] == "unhealthy"
    assert body["checks"]["database"]["status"] == "healthy"


async def test_health_stays_healthy_when_dependencies_are_down(backend: Backend) -> None:
    settings = settings_for(backend, REDIS_URL=f"redis://127.0.0.1:{closed_port()}")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            assert (await http.get("/health")).status_code == 200

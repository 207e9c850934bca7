"""Cerberus gateways for the benchmark: a seeded database, then `cerberus serve` on a loopback port.

Rows are created directly with the models (an organisation, one workspace per upstream,
one agent each, optionally the full policy set org-wide, and a super_admin for the admin
API) before the process starts, so the gateway's first request is a cold one exactly as in
production.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from sqlalchemy import func, select

from bench import procs
from cerberus.agents.keys import generate_key
from cerberus.agents.models import Agent
from cerberus.audit.models import AuditEvent
from cerberus.auth.passwords import hash_password
from cerberus.auth.roles import Role
from cerberus.db import create_engine, create_sessionmaker
from cerberus.migrate import upgrade
from cerberus.policies.models import Policy
from cerberus.settings import Settings
from cerberus.tenancy.models import Organisation, User, Workspace

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/8"  # this harness's own Redis database number
ADMIN_EMAIL = "bench-admin@example.com"
ADMIN_PASSWORD = "bench-admin-password"


@dataclass
class GatewaySpec:
    name: str
    env: dict[str, str]
    data_dir: Path
    policies: list[dict[str, Any]] = field(default_factory=list)
    pg_database: str | None = None
    keys: dict[str, str] = field(default_factory=dict)  # upstream name -> agent key

    @property
    def settings(self) -> Settings:
        return Settings(
            DATABASE_URL=self.env.get("DATABASE_URL"),
            REDIS_URL=self.env.get("REDIS_URL"),
            DATA_DIR=self.data_dir,
        )


def embedded_spec(name: str, root: Path, policies: list[dict[str, Any]]) -> GatewaySpec:
    data_dir = root / name
    data_dir.mkdir(parents=True, exist_ok=True)
    return GatewaySpec(name, {"DATA_DIR": str(data_dir)}, data_dir, policies)


async def postgres_spec(
    name: str, root: Path, policies: list[dict[str, Any]]
) -> GatewaySpec | None:
    """A fresh PostgreSQL database and Redis DB 8, or None when either is not reachable."""
    database = f"cerberus_bench_{uuid.uuid4().hex[:8]}"
    try:
        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
        try:
            await admin.execute(f'CREATE DATABASE "{database}"')
        finally:
            await admin.close()
        cache = aioredis.from_url(REDIS_URL)
        try:
            await cache.flushdb()
        finally:
            await cache.aclose()
    except (OSError, asyncpg.PostgresError, aioredis.RedisError):
        return None
    data_dir = root / name
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}",
        "REDIS_URL": REDIS_URL,
    }
    return GatewaySpec(name, env, data_dir, policies, pg_database=database)


async def drop_postgres(spec: GatewaySpec) -> None:
    if spec.pg_database is None:
        return
    admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{spec.pg_database}" WITH (FORCE)')
    finally:
        await admin.close()


async def seed(spec: GatewaySpec, upstreams: dict[str, str]) -> None:
    """Migrate, then one workspace and agent per upstream; policies apply organisation-wide."""
    settings = spec.settings
    await upgrade(settings)
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            organisation = Organisation(name="Bench", slug=f"bench-{spec.name}")
            session.add(organisation)
            await session.flush()
            for upstream, url in upstreams.items():
                workspace = Workspace(
                    organisation_id=organisation.id,
                    name=upstream,
                    slug=upstream,
                    mcp_server_url=url,
                )
                session.add(workspace)
                await session.flush()
                key = generate_key(settings.API_KEY_PREFIX)
                session.add(
                    Agent(
                        organisation_id=organisation.id,
                        workspace_id=workspace.id,
                        name=f"bench-{upstream}",
                        key_hash=key.hash,
                        key_prefix=key.display_prefix,
                    )
                )
                spec.keys[upstream] = key.plain
            for policy in spec.policies:
                session.add(Policy(organisation_id=organisation.id, **policy))
            session.add(
                User(
                    organisation_id=None,
                    email=ADMIN_EMAIL,
                    password_hash=hash_password(ADMIN_PASSWORD),
                    role=Role.SUPER_ADMIN,
                )
            )
    finally:
        await engine.dispose()


async def audit_event_count(spec: GatewaySpec) -> int:
    engine = create_engine(spec.settings)
    try:
        async with create_sessionmaker(engine)() as session:
            return int(await session.scalar(select(func.count()).select_from(AuditEvent)) or 0)
    finally:
        await engine.dispose()


def start_gateway(spec: GatewaySpec, log_dir: Path, *, suffix: str = "") -> procs.Proc:
    port = procs.free_port()
    return procs.start(
        f"{spec.name}{suffix}",
        [str(procs.BIN / "cerberus"), "serve", "--port", str(port)],
        port=port,
        log_dir=log_dir,
        env=spec.env,
        cwd=spec.data_dir,
    )


def admin_session(url: str) -> None:
    """What an admin does first: log in, then one authenticated request (blocking)."""
    login = json.dumps({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).encode()
    request = urllib.request.Request(
        f"{url}/control-plane/api/v1/auth/login",
        data=login,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        token = json.loads(answer.read())["access_token"]
    me = urllib.request.Request(
        f"{url}/control-plane/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(me, timeout=30) as answer:
        if json.loads(answer.read()).get("email") != ADMIN_EMAIL:
            raise RuntimeError("the admin session did not reach its own account")

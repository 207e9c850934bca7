"""The machine and the versions a result was measured with, so a number can be reproduced."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from bench.gateway import PG_ADMIN_DSN, REDIS_URL

PACKAGES = (
    "cerberus-gateway",
    "mcp",
    "aiohttp",
    "uvicorn",
    "uvloop",
    "httptools",
    "starlette",
    "fastapi",
    "orjson",
    "sqlalchemy",
    "asyncpg",
    "aiosqlite",
    "google-re2",
    "py-spy",
)


async def describe() -> dict[str, Any]:
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_executable": _interpreter(),
        "packages": {name: _version(name) for name in PACKAGES},
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--", "src")),
        "postgres": await _postgres_version(),
        "redis": await _redis_version(),
    }


def _interpreter() -> str:
    """The interpreter behind the venv: which build ran the benchmark matters, the same
    version runs ~15-20 % slower from pyenv than from Debian's package, built with PGO and LTO
    as the image's is (Makefile, BENCH_PYTHON)."""
    return str(Path(sys.executable).resolve())


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


async def _postgres_version() -> str | None:
    try:
        connection = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return None
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


async def _redis_version() -> str | None:
    client = aioredis.from_url(REDIS_URL)
    try:
        info = await client.info("server")
        return str(info.get("redis_version"))
    except (OSError, aioredis.RedisError):
        return None
    finally:
        await client.aclose()

"""App factories for bench/experiments.py: Cerberus as shipped, with one candidate fix applied.

Each changes only how the app is assembled (no file under src/ is edited), so the harness
can measure a fix before its owner makes it.
"""

from __future__ import annotations

from fastapi import FastAPI

from cerberus.app import app_from_env


def no_telemetry() -> FastAPI:
    """FastAPI's native OpenTelemetry hook checks os.environ on every request even when no
    provider is configured; FastAPI(telemetry={"tracing": False, ...}) turns it off."""
    app = app_from_env()
    app._telemetry.update(tracing=False, metrics=False, logs=False)  # type: ignore[attr-defined]
    return app

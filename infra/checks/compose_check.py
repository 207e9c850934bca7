#!/usr/bin/env python3
"""Check docker-compose.yml parses and wires Cerberus to PostgreSQL and Valkey (no engine here)."""

# ruff: noqa: T201  (a command-line check reports by printing)

import re
import sys
from pathlib import Path

import yaml

path = Path(sys.argv[1])
compose = yaml.safe_load(path.read_text())
services = compose["services"]
problems = []
if set(services) != {"cerberus", "postgres", "valkey"}:
    problems.append(f"services are {sorted(services)}")
app = services.get("cerberus", {})
build = app.get("build", {})
dockerfile = (path.parent / build.get("context", ".") / build.get("dockerfile", "")).resolve()
if not dockerfile.is_file():
    problems.append(f"build dockerfile {dockerfile} missing")
elif not re.search(rf"^FROM .* AS {build.get('target')}$", dockerfile.read_text(), re.M):
    problems.append(f"build target {build.get('target')!r} is not a stage of {dockerfile}")
env = app.get("environment", {})
if not str(env.get("DATABASE_URL", "")).startswith("postgresql+asyncpg://"):
    problems.append("DATABASE_URL is not postgresql+asyncpg://")
if str(env.get("RUN_MIGRATIONS_ON_STARTUP")) != "true":
    problems.append("RUN_MIGRATIONS_ON_STARTUP is not true")
for dependency in ("postgres", "valkey"):
    if app.get("depends_on", {}).get(dependency, {}).get("condition") != "service_healthy":
        problems.append(f"cerberus does not wait for a healthy {dependency}")
    if "healthcheck" not in services.get(dependency, {}):
        problems.append(f"{dependency} has no healthcheck")
for problem in problems:
    print(problem)
print(f"{path}: {len(services)} services, {len(problems)} problem(s)")
sys.exit(1 if problems else 0)

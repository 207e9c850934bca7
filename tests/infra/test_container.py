"""The Dockerfile, .dockerignore and compose stack hold what the deployment guide relies on."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from cerberus.settings import Settings
from tests.infra.fakes import REPO

DOCKERFILE = REPO / "docker" / "Dockerfile"
COMPOSE = REPO / "docker" / "docker-compose.yml"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def stages() -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    name = ""
    for instruction, args in instructions():
        if instruction == "FROM":
            name = args.split(" AS ")[-1].strip()
            out[name] = []
        out[name].append((instruction, args))
    return out


def test_multi_stage_with_a_pinned_slim_python_base() -> None:
    built = stages()
    assert list(built) == ["builder", "prod"]
    for steps in built.values():
        assert re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+ AS \w+", steps[0][1])
    assert any(i == "RUN" and "pip install" in a for i, a in built["builder"])
    assert not any(i == "RUN" and "pip install" in a for i, a in built["prod"])
    assert ("COPY", "--from=builder /opt/venv /opt/venv") in built["prod"]


def test_prod_runs_as_a_numeric_user_on_port_8000_with_a_health_check() -> None:
    prod = dict(stages()["prod"])
    assert re.fullmatch(r"\d+:\d+", prod["USER"])
    assert prod["EXPOSE"] == "8000"
    health = prod["HEALTHCHECK"]
    command = json.loads(health.split(" CMD ", 1)[1])  # exec form: a JSON array
    assert "/health" in " ".join(command)
    assert json.loads(prod["CMD"]) == ["cerberus", "serve"]


def test_prod_environment_serves_on_all_interfaces_and_migrates_on_start() -> None:
    env = dict(pair.split("=", 1) for i, a in stages()["prod"] if i == "ENV" for pair in a.split())
    assert env["HOST"] == "0.0.0.0"
    assert env["PORT"] == "8000"
    assert env["RUN_MIGRATIONS_ON_STARTUP"] == "true"
    assert int(env["WORKERS"]) >= 1
    assert {k for k in env if k.isupper() and not k.startswith(("PATH", "PYTHON"))} <= set(
        Settings.model_fields
    )


def test_the_image_started_without_its_settings_refuses_to_start(tmp_path: Path) -> None:
    # What an App Runner update whose ImageConfiguration names only the port leaves: the
    # image's own environment. It must not serve an empty database under the default key.
    env = dict(pair.split("=", 1) for i, a in stages()["prod"] if i == "ENV" for pair in a.split())
    assert env["APP_ENV"] == "production"
    env.update(
        PATH=f"{Path(sys.executable).parent}:/usr/bin:/bin",
        DATA_DIR=str(tmp_path),
        HOST="127.0.0.1",
        HOME=str(tmp_path),
    )
    done = subprocess.run(
        [str(Path(sys.executable).parent / "cerberus"), "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: invalid settings: SECRET_KEY: production needs a random key of at least 32 "
        "characters, not the default"
    ]
    assert not os.listdir(tmp_path)


def dockerignore_excludes(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; '!' re-includes; '**/' matches any depth."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if pattern.startswith("**/"):
            matched = any(fnmatch.fnmatch(part, pattern[3:]) for part in parts)
        else:
            matched = any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes)
        if matched:
            excluded = not negate
    return excluded


def test_the_build_context_holds_what_the_dockerfile_copies_and_nothing_secret() -> None:
    copied = [a.split()[0] for i, a in instructions() if i == "COPY" and not a.startswith("--")]
    sources = [*copied, "pyproject.toml", "README.md", "src"]
    for source in sources:
        assert (REPO / source).exists(), source
        assert not dockerignore_excludes(source.rstrip("/")), source
    for secret in (".git", ".venv", "data", "infra/environments/stage/terraform.tfvars", ".env"):
        assert dockerignore_excludes(secret), secret


def test_compose_runs_cerberus_with_postgres_and_valkey_and_migrates_on_start() -> None:
    text = COMPOSE.read_text()
    assert re.search(r"^  cerberus:\n    build:\n      context: \.\.\n", text, re.M)
    assert "dockerfile: docker/Dockerfile" in text
    assert "target: prod" in text
    assert re.search(r"^  postgres:\n    image: postgres:\d", text, re.M)
    assert re.search(r"^  valkey:\n    image: valkey/valkey:\d", text, re.M)
    assert "DATABASE_URL: postgresql+asyncpg://cerberus:cerberus@postgres:5432/cerberus" in text
    assert "REDIS_URL: redis://valkey:6379/0" in text
    assert 'RUN_MIGRATIONS_ON_STARTUP: "true"' in text
    assert text.count("condition: service_healthy") == 2
    names = re.findall(r"^      ([A-Z_]+): ", text, re.M)
    assert names
    assert set(names) <= set(Settings.model_fields) | {
        "POSTGRES_USER",
        "POSTGRES_PASSWORD",
        "POSTGRES_DB",
    }


def test_every_data_file_of_the_package_reaches_the_image() -> None:
    """The image installs a wheel, not the work tree: non-Python files need package-data."""
    with (REPO / "pyproject.toml").open("rb") as handle:
        patterns = tomllib.load(handle)["tool"]["setuptools"]["package-data"]["cerberus"]
    package = REPO / "src" / "cerberus"
    shipped = {path for pattern in patterns for path in package.glob(pattern)}
    data = {
        path
        for path in package.rglob("*")
        if path.is_file() and path.suffix not in {".py", ".pyc"} and "__pycache__" not in path.parts
    }
    missing = sorted(str(p.relative_to(package)) for p in data - shipped)
    assert not missing, f"add to [tool.setuptools.package-data] in pyproject.toml: {missing}"

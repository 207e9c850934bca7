from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CERBERUS = str(Path(sys.executable).with_name("cerberus"))


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    full_env.update(env or {})
    return subprocess.run(
        [CERBERUS, *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=60
    )


@pytest.mark.parametrize("command", [[], ["serve"], ["migrate"], ["version"]])
def test_every_command_has_help(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.returncode == 0
    assert "usage: cerberus" in result.stdout


def test_version_prints_the_package_version() -> None:
    from cerberus import __version__

    assert run("version").stdout.strip() == f"cerberus {__version__}"


@pytest.mark.parametrize("command", [["migrate"], ["serve", "--port", "1"]])
def test_unreachable_database_is_one_line_without_traceback(command: list[str]) -> None:
    result = run(*command, env={"DATABASE_URL": "postgresql+asyncpg://nobody:pw@127.0.0.1:9/x"})
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    assert "cannot reach the database" in lines[0]
    assert "pw@" not in result.stderr


def test_invalid_setting_exits_2_naming_it() -> None:
    result = run("version", env={"LOG_LEVEL": "LOUD"})
    assert result.returncode == 2
    assert result.stderr.startswith("error: invalid setting LOG_LEVEL")
    assert "Traceback" not in result.stderr


def test_migrate_creates_the_embedded_database_then_is_idempotent(tmp_path: Path) -> None:
    first = run("migrate", cwd=tmp_path)
    second = run("migrate", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("migrated empty database ->")
    assert second.stdout.startswith("already at ")
    assert (tmp_path / "data" / "cerberus.db").exists()


def test_migrate_sql_prints_reviewable_sql_without_a_database(tmp_path: Path) -> None:
    result = run("migrate", "--sql", cwd=tmp_path)
    assert result.returncode == 0
    assert "CREATE TABLE organisations" in result.stdout
    assert not (tmp_path / "data" / "cerberus.db").exists()

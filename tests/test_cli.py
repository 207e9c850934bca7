from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from cerberus.audit.writer import UNWRITTEN
from tests.servers import free_port, start, wait_until_healthy

CERBERUS = str(Path(sys.executable).with_name("cerberus"))


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    full_env.update(env or {})
    return subprocess.run(
        [CERBERUS, *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=60
    )


@pytest.mark.parametrize(
    "command", [[], ["serve"], ["migrate"], ["version"], ["audit"], ["audit", "restore"]]
)
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


@pytest.mark.parametrize(("args", "env"), [(["--workers", "2"], {}), ([], {"WORKERS": "3"})])
def test_several_workers_without_redis_exit_2_before_serving(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    # Each worker kept its own rate-limit windows: a limit of 5 a minute admitted 10 with two.
    result = run("serve", "--port", str(free_port()), *args, env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert "workers need REDIS_URL" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "data").exists()  # refused before it migrated anything


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


def test_audit_restore_writes_back_a_logged_event_once(tmp_path: Path) -> None:
    assert run("migrate", cwd=tmp_path).returncode == 0
    event = {
        "request_id": "req-1",
        "decision_id": "logged-at-shutdown",
        "organisation_id": "org",
        "workspace_id": "ws",
        "agent_id": "agent",
        "direction": "request",
        "method": "tools/call",
        "tool_name": "echo",
        "action": "allow",
        "guardrails_triggered": "[]",
        "processing_ms": 0.5,
        "upstream_status": 200,
        "upstream_latency_ms": 2.0,
        "created_at": "2026-11-29T23:00:00.123456+00:00",
    }
    line = json.dumps({"level": "ERROR", "message": UNWRITTEN, "audit_event": event})
    log = tmp_path / "gateway.log"
    log.write_text(f'{{"message": "request"}}\n{line}\n')

    first = run("audit", "restore", str(log), cwd=tmp_path)
    again = subprocess.run(
        [CERBERUS, "audit", "restore"], input=log.read_text(), capture_output=True, text=True,
        cwd=tmp_path, timeout=60,
    )  # fmt: skip

    assert first.returncode == 0, first.stderr
    assert first.stdout == "audit events restored: 1, already stored: 0, unreadable lines: 0\n"
    assert again.stdout == "audit events restored: 0, already stored: 1, unreadable lines: 0\n"


def test_audit_restore_into_a_database_never_migrated_says_so_in_one_line(tmp_path: Path) -> None:
    # It said "cannot reach the database" of a database it had reached.
    log = tmp_path / "gateway.log"
    event = {
        **dict.fromkeys(("request_id", "decision_id", "organisation_id"), "x"),
        **dict.fromkeys(("workspace_id", "agent_id", "method", "tool_name"), "x"),
        "direction": "request",
        "action": "allow",
        "guardrails_triggered": "[]",
        "processing_ms": 0.5,
        "upstream_status": 200,
        "upstream_latency_ms": 2.0,
        "created_at": "2026-11-29T23:00:00+00:00",
    }
    log.write_text(json.dumps({"message": UNWRITTEN, "audit_event": event}) + "\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "cerberus.db").touch()
    result = run("audit", "restore", str(log), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error: the database at sqlite+aiosqlite:///")
    assert "refused: no such table: audit_events" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_audit_restore_of_a_missing_file_is_one_line(tmp_path: Path) -> None:
    result = run("audit", "restore", str(tmp_path / "nope.log"), cwd=tmp_path)
    assert result.returncode == 1
    assert (
        result.stderr == f"error: cannot read {tmp_path / 'nope.log'}: No such file or directory\n"
    )


def test_migrate_sql_prints_reviewable_sql_without_a_database(tmp_path: Path) -> None:
    result = run("migrate", "--sql", cwd=tmp_path)
    assert result.returncode == 0
    assert "CREATE TABLE organisations" in result.stdout
    assert not (tmp_path / "data" / "cerberus.db").exists()


# Loaded first through PYTHONPATH: records the PID of every process that imports alembic.
_RECORD_ALEMBIC_IMPORTS = """
import json
import os
import sys


class _RecordAlembic:
    def find_spec(self, name, path=None, target=None):
        if name == "alembic":
            with open(os.environ["ALEMBIC_IMPORTERS"], "a") as log:
                log.write(f"{os.getpid()}\\n")
        return None


sys.meta_path.insert(0, _RecordAlembic())
"""


def test_serve_migrates_first_in_a_child_so_the_serving_process_never_loads_alembic(
    tmp_path: Path,
) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(_RECORD_ALEMBIC_IMPORTS)
    importers = tmp_path / "alembic-importers"
    env = {"PYTHONPATH": str(hooks), "ALEMBIC_IMPORTERS": str(importers), "LOG_LEVEL": "INFO"}
    port = free_port()
    server = start(
        [CERBERUS, "serve", "--port", str(port)],
        port=port,
        log_path=tmp_path / "serve.log",
        env=env,
        cwd=tmp_path,
    )
    try:
        wait_until_healthy(server)
        answer = httpx.get(f"{server.url}/health/detailed", timeout=5)
    finally:
        server.stop()
    assert answer.json()["checks"]["database"]["status"] == "healthy"
    assert "server" not in answer.headers  # the server's software is not advertised
    assert '"migrations applied"' in server.log()
    pids = set(importers.read_text().split())
    assert pids, "the migration did not import alembic anywhere"
    assert str(server.process.pid) not in pids


def test_the_cli_module_alone_loads_neither_sqlalchemy_nor_fastapi() -> None:
    # With --workers above 1 the CLI's process only supervises the workers (27 MiB less).
    code = "import sys, cerberus.cli; print(sorted({'sqlalchemy', 'fastapi'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["serve", "--port", "99999"], "argument --port: a port must be from 1 to 65535"),
        (["serve", "--port", "http"], "argument --port: not a number: 'http'"),
        (["serve", "--workers", "0"], "argument --workers: workers must be from 1 to 64"),
        (["demo", "--port", "70000"], "argument --port: a port must be from 1 to 65535"),
        (
            ["demo", "--upstream-port", "0"],
            "argument --upstream-port: a port must be from 1 to 65535",
        ),
    ],
)
def test_an_out_of_range_port_or_worker_count_is_a_usage_error(
    tmp_path: Path, args: list[str], reason: str
) -> None:
    # `serve --port 99999` said it ran on :99999 and listened on another port; `demo
    # --port 70000` was a traceback.
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].endswith(reason)
    assert not (tmp_path / "data").exists()


def test_an_unknown_revision_is_one_line(tmp_path: Path) -> None:
    result = run("migrate", "--revision", "nope", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == "error: Can't locate revision identified by 'nope'\n"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql+asyncpg://app:pw@db:port/x", "the port must be a number from 1 to 65535"),
        ("postgresql+asyncpg://app:pw@db:99999/x", "the port must be a number from 1 to 65535"),
        ("postgresql+asyncpg://app:p@ss@db:5432/x", "the password (or user) holds '@'"),
    ],
)
def test_a_database_url_that_cannot_be_right_is_one_line_without_its_password(
    url: str, reason: str
) -> None:
    # A port that is no number was a traceback; a password with a plain @ was cut there and
    # its end shown as part of the host.
    result = run("migrate", env={"DATABASE_URL": url})
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: invalid setting DATABASE_URL: {reason}")
    assert len(result.stderr.splitlines()) == 1
    assert "pw" not in result.stderr
    assert "ss@" not in result.stderr


def test_a_demo_on_the_last_port_asks_for_an_upstream_port(tmp_path: Path) -> None:
    # Its upstream's default, the next port, was 65536: a traceback from the socket.
    result = run("demo", "--port", "65535", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == (
        "error: --port 65535 leaves no port for the demo upstream: set --upstream-port\n"
    )

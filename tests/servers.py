"""Starting real processes on loopback ports for tests, and stopping exactly those, by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return int(self.process.returncode)


def start(
    argv: Sequence[str],
    *,
    port: int,
    log_path: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Server:
    full_env = {**os.environ, **(env or {})}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(argv), stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=cwd
        )
    return Server(process=process, port=port, log_path=log_path)


def wait_until_healthy(server: Server, path: str = "/health", timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}{path}", timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"server not healthy after {timeout}s:\n{server.log()}")


@contextmanager
def cerberus_servers(
    count: int, env: dict[str, str], tmp_path: Path, *, wait: bool = True
) -> Iterator[list[Server]]:
    """`cerberus serve` processes started together, stopped (by PID) on the way out."""
    servers = []
    try:
        for index in range(count):
            port = free_port()
            servers.append(
                start(
                    [str(BIN / "cerberus"), "serve", "--port", str(port)],
                    port=port,
                    log_path=tmp_path / f"cerberus-{index}.log",
                    env=env,
                    cwd=tmp_path,
                )
            )
        if wait:
            for server in servers:
                wait_until_healthy(server)
        yield servers
    finally:
        for server in servers:
            server.stop()

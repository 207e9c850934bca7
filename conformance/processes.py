"""The processes a conformance run starts (upstream, gateway, forwarder): started on free
loopback ports, logged to files, and stopped by their own PIDs only."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 20) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)


def start(
    name: str,
    argv: Sequence[str],
    *,
    port: int,
    log_dir: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Process:
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            list(argv), stdout=log, stderr=subprocess.STDOUT, env=env or dict(os.environ), cwd=cwd
        )
    return Process(name, popen, port, log_path)


def wait_until_serving(process: Process, path: str | None = None, timeout: float = 60) -> None:
    """Until the port accepts connections (and `path`, if given, answers below 500)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited early:\n{process.log_tail()}")
        if _answers(process, path):
            return
        time.sleep(0.1)
    raise TimeoutError(f"{process.name} not serving after {timeout}s:\n{process.log_tail()}")


def _answers(process: Process, path: str | None) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", process.port), timeout=1):
            pass
    except OSError:
        return False
    if path is None:
        return True
    try:
        with urllib.request.urlopen(process.base_url + path, timeout=2) as response:
            return int(response.status) < 500
    except urllib.error.HTTPError as error:
        return error.code < 500
    except OSError:
        return False

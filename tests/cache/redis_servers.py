"""Redis servers of a test's own (a password, TLS, a Unix socket), started and stopped by PID."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def port_answers(port: int) -> Callable[[], bool]:
    def answers() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    return answers


def socket_exists(path: Path) -> Callable[[], bool]:
    return path.exists


@contextmanager
def redis_server(arguments: list[str], ready: Callable[[], bool]) -> Iterator[None]:
    """A redis-server with these arguments (nothing saved, loopback only), until the block ends."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    server = subprocess.Popen(
        [binary, "--save", "", "--bind", "127.0.0.1", *arguments],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not ready():
            assert server.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)
        yield
    finally:
        server.terminate()
        server.wait(timeout=10)

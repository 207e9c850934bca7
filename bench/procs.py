"""Processes the harness starts on loopback ports, stopped by PID, and what /proc says they cost."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

PYTHON = sys.executable
BIN = Path(sys.executable).parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def other_python(item: str, option: str = "--python") -> tuple[str, Path]:
    """NAME=PYTHON: a virtual environment's python with Cerberus installed in it, by name
    (to measure this checkout under another interpreter)."""
    name, sep, python = item.partition("=")
    # Not resolved: a venv's python is a symlink to the base interpreter, which would leave
    # the venv (and Cerberus's dependencies) behind.
    interpreter = Path(python).absolute()
    if not sep or not name or not (interpreter.parent / "cerberus").is_file():
        raise SystemExit(
            f"{option} {item!r}: expected NAME=PYTHON, a virtual environment's python "
            "with Cerberus installed in it"
        )
    return name, interpreter


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    started_at: float = field(default_factory=time.perf_counter)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def cpu_seconds(self) -> float:
        """utime + stime of the process and its descendants (uvicorn may fork workers)."""
        return sum(_cpu_ticks(pid) for pid in _tree(self.pid)) / CLOCK_TICKS

    def rss_mib(self) -> float:
        """The largest resident set among the process and its descendants (each serves alone)."""
        sizes = [status_kib(pid, "VmRSS") for pid in _tree(self.pid)]
        return max(sizes, default=0) / 1024

    def peak_rss_mib(self) -> float:
        sizes = [status_kib(pid, "VmHWM") for pid in _tree(self.pid)]
        return max(sizes, default=0) / 1024

    def stop(self, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return int(self.process.returncode)


def start(
    name: str,
    argv: Sequence[str],
    *,
    port: int,
    log_dir: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Proc:
    log_path = log_dir / f"{name}.log"
    full_env = {**os.environ, **(env or {})}
    started = time.perf_counter()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(argv), stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=cwd
        )
    return Proc(name, process, port, log_path, started)


def wait_http(proc: Proc, path: str, timeout: float = 120) -> None:
    """Until the server answers anything below 500 on `path` (405 on GET /mcp counts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            raise RuntimeError(f"{proc.name} exited early:\n{proc.log_tail()}")
        try:
            with urllib.request.urlopen(f"{proc.url}{path}", timeout=1) as answer:
                if answer.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.02)
    raise TimeoutError(f"{proc.name} not answering after {timeout}s:\n{proc.log_tail()}")


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue.extend(children.get(pid, []))
    return found


def _cpu_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        return 0
    # Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def status_kib(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def machine_busy_seconds() -> float:
    """CPU seconds all processes on the machine have used (busy time from /proc/stat)."""
    with open("/proc/stat") as handle:
        fields = [int(value) for value in handle.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def load_average() -> list[float]:
    with open("/proc/loadavg") as handle:
        return [float(value) for value in handle.read().split()[:3]]

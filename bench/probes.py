"""Small measurements behind the diagnoses in docs/benchmarks.md: `python -m bench.probes`.

- `churn`: upstream TCP connections the gateway closes during a c=32 run, with the default
  MCP_MAX_KEEPALIVE_CONNECTIONS and with a bound above the concurrency (`ss` TIME-WAIT count).
- `imports`: resident memory and time each heavy import adds to the serving process.
- `sessions`: resident memory of a full-set gateway (SQLite) as calls pile up against the
  SDK upstream with its defaults (sessions, answers on SSE streams), whose requests the
  gateway keeps for resumption: bytes kept per call.
- `patterns`: RE2 candidates and time of the current PII patterns and of the loose ones they
  replaced, on the adversarial inputs where validation in Python dominated.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
from pathlib import Path

import uvloop

from bench import gateway, procs
from bench.loadgen import Target, run_load
from bench.policies import full_policy_set, redacted_values
from bench.scan import ADVERSARIAL

RESULTS = Path(__file__).parent / "results"
WORK = RESULTS / "tmp" / "probes"
FOUND: dict[str, str] = {}


def _time_wait(port: int) -> int:
    out = subprocess.run(
        ["ss", "-Htan", "state", "time-wait", f"dport = :{port}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return out.count("\n")


async def churn(seconds: float = 2.0) -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "logs").mkdir(parents=True)
    port = procs.free_port()
    argv = [procs.PYTHON, "-m", "bench.stub_upstream", "--port", str(port)]
    stub = procs.start("stub", argv, port=port, log_dir=WORK / "logs")
    started = [stub]
    try:
        procs.wait_http(stub, "/mcp")
        spec = gateway.embedded_spec("churn", WORK, [])
        await gateway.seed(spec, {"stub": f"{stub.url}/mcp"})
        for bound in (None, "100"):
            if bound:
                spec.env["MCP_MAX_KEEPALIVE_CONNECTIONS"] = bound
            proc = gateway.start_gateway(spec, WORK / "logs", suffix=f"-{bound or 'default'}")
            started.append(proc)
            procs.wait_http(proc, "/health")
            before = _time_wait(port)
            outcome = await run_load(
                Target("churn", f"{proc.url}/mcp", spec.keys["stub"]),
                concurrency=32,
                seconds=seconds,
            )
            closed = _time_wait(port) - before
            label = f"MCP_MAX_KEEPALIVE_CONNECTIONS={bound or 'default (20)'}"
            line = (
                f"{label}: {outcome.requests} calls at c=32, {closed} upstream connections closed"
            )
            print(line)  # noqa: T201
            FOUND[f"churn {bound or 'default'}"] = line
            proc.stop()
    finally:
        for proc in reversed(started):
            proc.stop()


async def sessions(rounds: int = 5, seconds: float = 4.0) -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "logs").mkdir(parents=True)
    port = procs.free_port()
    argv = [procs.PYTHON, "-m", "bench.upstream", "--port", str(port), "--stateful"]
    upstream = procs.start("upstream_stateful", argv, port=port, log_dir=WORK / "logs")
    started = [upstream]
    try:
        procs.wait_http(upstream, "/mcp")
        policies = full_policy_set().policies
        spec = gateway.embedded_spec("sessions", WORK, policies)
        await gateway.seed(spec, {"sdk": f"{upstream.url}/mcp"})
        proc = gateway.start_gateway(spec, WORK / "logs")
        started.append(proc)
        procs.wait_http(proc, "/health")
        target = Target("sessions", f"{proc.url}/mcp", spec.keys["sdk"], redacted_values(policies))
        rss: list[float] = []
        calls: list[int] = []
        for _ in range(rounds):
            outcome = await run_load(target, concurrency=32, seconds=seconds, warmup=0)
            if outcome.errors:
                raise RuntimeError(f"{outcome.errors} failed calls: {outcome.error_samples}")
            # Each run's 32 clients open sessions of their own (initialize): counted as calls.
            calls.append(outcome.requests + 64)
            rss.append(proc.rss_mib())
        # From the end of the first round on: arenas and buffers have grown to the load by then.
        per_call = (rss[-1] - rss[0]) * 1024 * 1024 / sum(calls[1:])
        line = (
            f"{sum(calls)} calls in sessions with SSE answers, RSS after each "
            f"{seconds:g} s round {[round(r, 1) for r in rss]} MiB: "
            f"{per_call:.0f} bytes per call after the first round"
        )
        print(line)  # noqa: T201
        FOUND["sessions"] = line
    finally:
        for proc in reversed(started):
            proc.stop()


def _rss_of(code: str) -> str:
    return subprocess.run(
        [procs.PYTHON, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def imports() -> None:
    whole = _rss_of(
        "import time\n"
        "def rss():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmRSS'): return int(line.split()[1]) / 1024\n"
        "started = time.perf_counter()\n"
        "import cerberus.app\n"
        "print(f'{rss():.1f} MiB resident, {1000 * (time.perf_counter() - started):.0f} ms')"
    )
    print(f"a bare interpreter after import cerberus.app: {whole}")  # noqa: T201
    FOUND["import cerberus.app"] = whole
    base = "import fastapi, sqlalchemy.ext.asyncio, aiohttp, pydantic, uvicorn, uvloop, orjson, re2"
    base += ", aiosqlite, asyncpg"
    for label, module in (
        ("the MCP SDK (cerberus/mcp.py imports mcp.shared.inbound)", "mcp.shared.inbound"),
        (
            "alembic (migrations in the serving process)",
            "alembic.command, alembic.runtime.migration",
        ),
        ("jwt + bcrypt", "jwt, bcrypt"),
        ("jsonschema", "jsonschema"),
        ("bcrypt dummy hash of auth/passwords.py", "cerberus.auth.passwords"),
    ):
        code = (
            "import time\n"
            "def rss():\n"
            "    for line in open('/proc/self/status'):\n"
            "        if line.startswith('VmRSS'): return int(line.split()[1]) / 1024\n"
            f"{base}\n"
            "before, started = rss(), time.perf_counter()\n"
            f"import {module}\n"
            "print(f'+{rss() - before:.1f} MiB, {1000 * (time.perf_counter() - started):.0f} ms')"
        )
        out = subprocess.run(
            [procs.PYTHON, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        print(f"{label}: {out}")  # noqa: T201
        FOUND[f"import {module}"] = out


# The loose PII patterns that offered a candidate every few bytes on these shapes, replaced
# on 2026-11-27 (docs/benchmarks.md, section 7), kept here to measure against.
LOOSE_PATTERNS = {
    "ipv4": r"\b\d{1,3}(?:\.\d{1,3}){3}\b",
    "card": r"\b\d(?:[ \-]?\d){12,18}\b",
    "ipv6": r"(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}"
    r"|(?:[0-9A-Fa-f]{1,4}:){6}\d{1,3}(?:\.\d{1,3}){3}"
    r"|(?:(?:[0-9A-Fa-f]{1,4}:){1,7}|:):(?:[0-9A-Fa-f]{1,4}:){0,6}"
    r"(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{1,4})?",
}


def patterns() -> None:
    import re2

    from cerberus.scanning.pii import RULES

    current = {
        "ipv4": RULES["ip_address"][0].pattern,
        "card": RULES["credit_card"][0].pattern,
        "ipv6": RULES["ip_address"][1].pattern,
    }
    cases = (
        ("ip_like", "ipv4"),
        ("digits_dashed", "card"),
        ("digits_spaced", "card"),
        ("card_groups", "card"),
        ("colons", "ipv6"),
    )
    for name, kind in cases:
        data = ADVERSARIAL[name](1_024_000).encode()
        for label, pattern in (("loose", LOOSE_PATTERNS[kind]), ("current", current[kind])):
            compiled = re2.compile(pattern)
            started = time.perf_counter()
            count = sum(1 for _ in compiled.finditer(data))
            took = (time.perf_counter() - started) * 1000
            shown = pattern if len(pattern) <= 60 else f"{pattern[:57]}..."
            line = f"1 MB of {name}, {label} {kind} {shown}: {count} candidates, {took:.1f} ms"
            print(line)  # noqa: T201
            FOUND[f"pattern {name} {label}"] = line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "probe",
        choices=("churn", "imports", "sessions", "patterns", "all"),
        default="all",
        nargs="?",
    )
    args = parser.parse_args()
    if args.probe in ("churn", "all"):
        uvloop.run(churn())
    if args.probe in ("imports", "all"):
        imports()
    if args.probe in ("sessions", "all"):
        uvloop.run(sessions())
    if args.probe in ("patterns", "all"):
        patterns()
    # Merged with earlier probes, so running one probe keeps the others' last findings.
    path = RESULTS / "probes.json"
    found = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**found, **FOUND}, indent=2) + "\n")


if __name__ == "__main__":
    main()

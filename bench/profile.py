"""Profiles of the full-policy gateway under load (py-spy), reduced to where its CPU goes.

py-spy samples the gateway process from outside (no code change, little overhead) while the
load generator drives it; the raw collapsed stacks are kept under bench/results/profiles/
and summarised as self time per function and inclusive time per area of the code.
Only samples of the thread holding the GIL are taken (`--gil`): without it, a uvloop thread
waiting in epoll and aiosqlite's worker waiting on its queue were counted as busy (the
same stale frame for seconds on end), which hid where the CPU really went. Work done with
the GIL released (RE2 scanning large texts, SQLite inside its thread) is not counted.
"""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import procs
from bench.loadgen import run_load

if TYPE_CHECKING:
    from bench.run import Scenario

PROFILED = ("stub_gateway_none", "gateway_full", "stub_gateway_full", "stub_gateway_full_pg")
PROFILE_DIR = Path(__file__).parent / "results" / "profiles"
RATE = 400
# Inclusive share of samples whose stack passes through each area (first match per frame).
AREAS = {
    "guardrails": ("cerberus/guardrails/", "cerberus/scanning/"),
    "pipeline + policies": ("cerberus/proxy/pipeline.py", "cerberus/policies/"),
    "proxy (routes, upstream, sse)": ("cerberus/proxy/",),
    "agent key lookup": ("cerberus/agents/",),
    "audit": ("cerberus/audit/",),
    # Only the logging work: RequestLogMiddleware itself wraps every request.
    "request logging": ("JsonFormatter", "scrub (", "logging/"),
    "upstream client": ("cerberus/proxy/http1.py", "cerberus/proxy/upstream.py"),
    "uvicorn / httptools": ("uvicorn/", "httptools"),
    "starlette / fastapi": ("starlette/", "fastapi/"),
    "pydantic": ("pydantic/", "pydantic_core"),
    "sqlalchemy": ("sqlalchemy/",),
    "redis": ("redis/",),
    "json (orjson / json)": ("orjson", "json/"),
    "asyncio / uvloop": ("asyncio/", "uvloop"),
}


def py_spy() -> str | None:
    found = procs.BIN / "py-spy"
    return str(found) if found.exists() else shutil.which("py-spy")


async def profile_gateway(scenarios: list[Scenario], work: Path, seconds: float) -> dict[str, Any]:
    binary = py_spy()
    if binary is None:
        return {"available": False, "reason": "py-spy not installed (pip install -e '.[bench]')"}
    PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"available": True, "rate_hz": RATE}
    for scenario in scenarios:
        if scenario.name not in PROFILED or scenario.gateway_proc is None:
            continue
        raw = PROFILE_DIR / f"{scenario.name}-c32.txt"
        recorder = await asyncio.create_subprocess_exec(
            binary, "record", "--pid", str(scenario.gateway_proc.pid), "--rate", str(RATE),
            "--duration", str(int(seconds)), "--format", "raw", "--output", str(raw), "--gil",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        await asyncio.sleep(0.5)  # py-spy attaches before the load starts
        load = await run_load(scenario.target, concurrency=32, seconds=seconds - 1.0, warmup=0)
        _, stderr = await recorder.communicate()
        if not raw.exists():
            out[scenario.name] = {"error": stderr.decode(errors="replace")[-500:]}
            continue
        out[scenario.name] = {
            "file": str(raw.relative_to(PROFILE_DIR.parent.parent.parent)),
            "rps_while_profiled": load.summary()["rps"],
            **summarise_stacks(raw.read_text()),
        }
    return out


def summarise_stacks(text: str, top: int = 15) -> dict[str, Any]:
    self_time: Counter[str] = Counter()
    cerberus_inclusive: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        self_time[_short(frames[-1])] += count
        for name in {_short(f) for f in frames if "cerberus/" in f}:
            cerberus_inclusive[name] += count
        for area, markers in AREAS.items():
            if any(marker in frame for frame in frames for marker in markers):
                areas[area] += count

    def share(counter: Counter[str]) -> list[list[Any]]:
        return [[name, round(100 * n / total, 1)] for name, n in counter.most_common(top)]

    return {
        "samples": total,
        "self_percent": share(self_time),
        "cerberus_inclusive_percent": share(cerberus_inclusive),
        "area_inclusive_percent": {a: round(100 * n / total, 1) for a, n in areas.most_common()},
    }


def _short(frame: str) -> str:
    """`check (cerberus/guardrails/pii.py:42)` -> `check (cerberus/guardrails/pii.py)`."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for anchor in ("site-packages/", "/src/", "/lib/python3"):
        if anchor in path:
            path = path.split(anchor, 1)[1]
            break
    return f"{name} ({path})" if path else name

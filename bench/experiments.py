"""Candidate hot-path fixes measured side by side: `python -m bench.experiments`.

Several gateway processes with the full policy set run at once against the stub upstream,
each with one change (an environment setting or an app-factory tweak); interleaved runs at
c=1 and c=32 give each variant's req/s and CPU per request next to the unchanged gateway.
`--python NAME=PYTHON` adds the unchanged gateway under another interpreter (a virtual
environment's python with Cerberus installed in it), `--only-python` leaves out the rest.
Results go to bench/results/experiments.json (with `--only-python`: experiments_python.json).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import uvloop

from bench import gateway, procs
from bench.loadgen import Target, run_load
from bench.policies import full_policy_set, redacted_values

RESULTS = Path(__file__).parent / "results"
UVICORN = ["--host", "127.0.0.1", "--loop", "uvloop", "--http", "httptools", "--no-access-log"]
VARIANTS: dict[str, tuple[dict[str, str], str | None]] = {
    "as shipped": ({}, None),
    "LOG_LEVEL=WARNING (no access log line)": ({"LOG_LEVEL": "WARNING"}, None),
    # What writing the audit trail costs under load: the queue is only written at shutdown.
    "audit written only every 60 s": (
        {"AUDIT_BATCH_SIZE": "10000000", "AUDIT_FLUSH_INTERVAL_SECONDS": "60"},
        None,
    ),
    "audit in batches of 100 every 0.1 s": (
        {"AUDIT_BATCH_SIZE": "100", "AUDIT_FLUSH_INTERVAL_SECONDS": "0.1"},
        None,
    ),
    "audit in batches of 5,000 every 2 s": (
        {"AUDIT_BATCH_SIZE": "5000", "AUDIT_FLUSH_INTERVAL_SECONDS": "2"},
        None,
    ),
}


def start_variant(
    spec: gateway.GatewaySpec, name: str, logs: Path, index: int, python: Path | None = None
) -> procs.Proc:
    """A variant of VARIANTS, or the gateway as shipped under `python` (another venv's)."""
    env, factory = VARIANTS[name] if python is None else ({}, None)
    port = procs.free_port()
    if factory is None:
        scripts = procs.BIN if python is None else python.parent
        argv = [str(scripts / "cerberus"), "serve", "--port", str(port)]
    else:
        argv = [procs.PYTHON, "-m", "uvicorn", factory, "--factory", "--port", str(port), *UVICORN]
    return procs.start(
        f"variant-{index}",
        argv,
        port=port,
        log_dir=logs,
        # The factory lives in bench/, importable from the repository root.
        env={**spec.env, **env, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        cwd=spec.data_dir,
    )


def chosen_variants(pythons: Sequence[str], only_python: bool = False) -> dict[str, Path | None]:
    """Variant name -> the interpreter it runs under (None: this venv's), in run order."""
    chosen: dict[str, Path | None] = dict.fromkeys(
        ["as shipped"] if only_python else list(VARIANTS)
    )
    for item in pythons:
        name, python = procs.other_python(item)
        chosen[f"as shipped, Python {name}"] = python
    return chosen


async def run(
    reps: int,
    seconds: float,
    pythons: Sequence[str] = (),
    only_python: bool = False,
) -> dict[str, Any]:
    chosen = chosen_variants(pythons, only_python)
    work = RESULTS / "tmp" / "experiments"
    shutil.rmtree(work, ignore_errors=True)
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    started: list[procs.Proc] = []
    try:
        port = procs.free_port()
        stub = procs.start(
            "stub", [procs.PYTHON, "-m", "bench.stub_upstream", "--port", str(port)],
            port=port, log_dir=logs,
        )  # fmt: skip
        started.append(stub)
        procs.wait_http(stub, "/mcp")
        policies = full_policy_set().policies
        spec = gateway.embedded_spec("experiments", work, policies)
        await gateway.seed(spec, {"stub": f"{stub.url}/mcp"})
        variants = {}
        for index, (name, python) in enumerate(chosen.items()):
            variants[name] = start_variant(spec, name, logs, index, python)
            started.append(variants[name])
        for proc in variants.values():
            procs.wait_http(proc, "/health")
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in chosen}
        names = list(chosen)
        for rep in range(reps):
            for name in names[rep % len(names) :] + names[: rep % len(names)]:
                proc = variants[name]
                target = Target(
                    name, f"{proc.url}/mcp", spec.keys["stub"], redacted_values(policies)
                )
                for concurrency in (1, 32):
                    marks: dict[str, float] = {}

                    def mark(
                        phase: str, proc: procs.Proc = proc, marks: dict[str, float] = marks
                    ) -> None:
                        marks[phase] = proc.cpu_seconds()

                    outcome = await run_load(
                        target, concurrency=concurrency, seconds=seconds, on_measure=mark
                    )
                    cpu = (marks["stop"] - marks["start"]) * 1000 / max(outcome.requests, 1)
                    runs[name].append(
                        {"concurrency": concurrency, **outcome.summary(), "gateway_cpu_ms": cpu}
                    )
        medians = {name: _medians(rows) for name, rows in runs.items()}
        for name, proc in variants.items():
            medians[name]["rss_mib"] = round(proc.rss_mib(), 1)
        return {"variants": medians, "runs": runs}
    finally:
        for proc in reversed(started):
            proc.stop()


def _medians(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for concurrency in (1, 32):
        chosen = [r for r in rows if r["concurrency"] == concurrency]
        out[f"c{concurrency}"] = {
            key: round(statistics.median(r[key] for r in chosen), 3)
            for key in ("rps", "p50_ms", "p99_ms", "gateway_cpu_ms")
        } | {"errors": sum(r["errors"] for r in chosen)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="NAME=PYTHON",
        help="the gateway as shipped under another venv's python too (repeatable)",
    )
    parser.add_argument(
        "--only-python", action="store_true", help="only as shipped, under each interpreter"
    )
    args = parser.parse_args()
    results = uvloop.run(run(args.reps, args.seconds, args.python, args.only_python))
    out = RESULTS / ("experiments_python.json" if args.only_python else "experiments.json")
    out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    print(  # noqa: T201
        "| variant | c=1 req/s | c=1 p50 ms | c=1 CPU ms/req | c=32 req/s | c=32 CPU ms/req "
        "| RSS MiB |\n|---|---|---|---|---|---|---|"
    )
    for name, m in results["variants"].items():
        one, many = m["c1"], m["c32"]
        print(  # noqa: T201
            f"| {name} | {one['rps']:.0f} | {one['p50_ms']:.2f} | {one['gateway_cpu_ms']:.3f} "
            f"| {many['rps']:.0f} | {many['gateway_cpu_ms']:.3f} | {m['rss_mib']} |"
        )


if __name__ == "__main__":
    main()

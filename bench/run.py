"""`make bench`: start everything on loopback, run interleaved scenarios, write bench/results/.

Scenarios (each at concurrency 1 and 32, `--reps` times, interleaved so drift hits all alike):
direct to the SDK upstream, through a gateway with no policies, through a gateway with the
full policy set and audit on (embedded SQLite + in-process cache, and PostgreSQL + Redis
when reachable); a minimal pass-through proxy as the floor of what proxying costs; the
same against the microsecond stub upstream. Then cold starts, guardrail
scan cost and, when py-spy is installed, profiles of the full-policy gateway under load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import uvloop

from bench import gateway, guardrail_cost, overheads, procs, profile, report, scan, system
from bench.gateway import GatewaySpec
from bench.loadgen import Target, first_health, first_success, run_load
from bench.policies import full_policy_set, redacted_values

RESULTS = Path(__file__).parent / "results"
CONCURRENCIES = (1, 32)


@dataclass
class Scenario:
    name: str
    upstream: str  # "sdk" or "stub"
    target: Target
    upstream_proc: procs.Proc
    gateway_proc: procs.Proc | None = None
    unavailable: str | None = None


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--reps", type=int, default=3, help="repetitions of every run")
    parser.add_argument("--seconds", type=float, default=1.5, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=0.3, help="unmeasured seconds per run")
    parser.add_argument("--cold-starts", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL + Redis")
    parser.add_argument("--no-scan", action="store_true")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--quick", action="store_true", help="1 rep of 1 s: a smoke run")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.quick:
        args.reps, args.seconds, args.warmup, args.cold_starts = 1, 1.0, 0.2, 1
    results = uvloop.run(run(args))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    RESULTS.mkdir(exist_ok=True)
    data = orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
    if not args.quick:
        (RESULTS / f"{stamp}.json").write_bytes(data)
    (RESULTS / "latest.json").write_bytes(data)
    markdown = report.render(results)
    (RESULTS / "latest.md").write_text(markdown)
    print(markdown)  # noqa: T201


async def run(args: argparse.Namespace) -> dict[str, Any]:
    begun = time.perf_counter()
    work = RESULTS / "tmp" / "run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    logs = work / "logs"
    logs.mkdir()
    started: list[procs.Proc] = []
    specs: list[GatewaySpec] = []
    results: dict[str, Any] = {"settings": vars(args).copy(), "system": await system.describe()}
    results["load_average_at_start"] = procs.load_average()
    try:
        upstream = _start_upstream("upstream_sdk", "bench.upstream", logs, started)
        stub = _start_upstream("upstream_stub", "bench.stub_upstream", logs, started)
        procs.wait_http(upstream, "/mcp")
        procs.wait_http(stub, "/mcp")
        urls = {"sdk": f"{upstream.url}/mcp", "stub": f"{stub.url}/mcp"}

        policy_set = full_policy_set()
        results["policy_set"] = {
            "registered_types": policy_set.registered,
            "missing_types": policy_set.missing,
            "policies": policy_set.policies,
        }
        specs.append(gateway.embedded_spec("gateway_none", work, []))
        specs.append(gateway.embedded_spec("gateway_full", work, policy_set.policies))
        if not args.no_postgres:
            pg = await gateway.postgres_spec("gateway_full_pg", work, policy_set.policies)
            if pg is None:
                results["postgres"] = "not reachable on 127.0.0.1:5432 / 6379: skipped"
            else:
                specs.append(pg)
        gateways: dict[str, procs.Proc] = {}
        for spec in specs:
            await gateway.seed(spec, urls)
            gateways[spec.name] = gateway.start_gateway(spec, logs)
            started.append(gateways[spec.name])
        for proc in gateways.values():
            procs.wait_http(proc, "/health")

        scenarios = [
            Scenario("direct", "sdk", Target("direct", urls["sdk"]), upstream),
            Scenario("stub_direct", "stub", Target("stub_direct", urls["stub"]), stub),
        ]
        for spec in specs:
            redacts = redacted_values(spec.policies)
            for kind, proc in (("sdk", upstream), ("stub", stub)):
                name = spec.name if kind == "sdk" else f"stub_{spec.name}"
                target = Target(name, f"{gateways[spec.name].url}/mcp", spec.keys[kind], redacts)
                scenarios.append(Scenario(name, kind, target, proc, gateways[spec.name]))
        references: dict[str, procs.Proc] = {}
        for kind, proc in (("sdk", upstream), ("stub", stub)):
            name = "reference_proxy" if kind == "sdk" else "stub_reference_proxy"
            reference = references[name] = _start_reference(name, urls[kind], logs, started)
            procs.wait_http(reference, "/mcp")
            target = Target(name, f"{reference.url}/mcp")
            scenarios.append(Scenario(name, kind, target, proc, reference))
        for scenario in scenarios:
            scenario.unavailable = await _smoke(scenario)
        results["scenarios"] = {s.name: s.unavailable or "ok" for s in scenarios}

        live = [s for s in scenarios if s.unavailable is None]
        phases = results["phase_seconds"] = {"start": round(time.perf_counter() - begun, 1)}
        mark = time.perf_counter()
        results["runs"] = await _interleaved(live, args)
        phases["scenarios"] = round(time.perf_counter() - mark, 1)
        results["rss_mib"] = {
            name: {"rss": round(p.rss_mib(), 1), "peak": round(p.peak_rss_mib(), 1)}
            for name, p in {
                "upstream_sdk": upstream,
                "upstream_stub": stub,
                **gateways,
                **references,
            }.items()
        }
        # The control plane loads on its first request (src/cerberus/control_plane.py): what
        # a process weighs once it has served the admin API as well.
        for name, proc in gateways.items():
            await asyncio.to_thread(procs.wait_http, proc, "/openapi.json")
            results["rss_mib"][name]["after_control_plane"] = round(proc.rss_mib(), 1)
            # Then as an admin uses it: a login (bcrypt) and a token read on a request.
            await asyncio.to_thread(gateway.admin_session, proc.url)
            results["rss_mib"][name]["after_admin_session"] = round(proc.rss_mib(), 1)
        mark = time.perf_counter()
        results["cold_start"] = await _cold_starts(specs, urls, live, logs, args.cold_starts)
        phases["cold_start"] = round(time.perf_counter() - mark, 1)
        await asyncio.sleep(1.0)  # let the audit writers flush their last batch
        results["audit_events"] = {
            spec.name: await gateway.audit_event_count(spec) for spec in specs
        }
        if not args.no_profile:
            mark = time.perf_counter()
            results["profiles"] = await profile.profile_gateway(live, work, 5.0)
            phases["profiles"] = round(time.perf_counter() - mark, 1)
        mark = time.perf_counter()
        results["guardrail_cost"] = await asyncio.to_thread(guardrail_cost.run_guardrail_cost)
        results["overheads_us"] = await asyncio.to_thread(overheads.run_overheads)
        results["audit_write_us_per_event"] = {
            spec.name: await overheads.audit_write_cost(spec) for spec in specs
        }
        phases["guardrail_cost"] = round(time.perf_counter() - mark, 1)
        if not args.no_scan:
            mark = time.perf_counter()
            results["scan_cost"] = await asyncio.to_thread(scan.scan_cost)
            phases["scan_cost"] = round(time.perf_counter() - mark, 1)
        results["summary"] = report.summarise(results)
    finally:
        for proc in reversed(started):
            proc.stop()
        for spec in specs:
            await gateway.drop_postgres(spec)
    results["load_average_at_end"] = procs.load_average()
    results["harness_seconds"] = round(time.perf_counter() - begun, 1)
    return results


def _start_upstream(name: str, module: str, logs: Path, started: list[procs.Proc]) -> procs.Proc:
    port = procs.free_port()
    proc = procs.start(
        name, [procs.PYTHON, "-m", module, "--port", str(port)], port=port, log_dir=logs
    )
    started.append(proc)
    return proc


def _start_reference(name: str, upstream: str, logs: Path, started: list[procs.Proc]) -> procs.Proc:
    port = procs.free_port()
    argv = [
        procs.PYTHON,
        "-m",
        "bench.reference_proxy",
        "--port",
        str(port),
        "--upstream",
        upstream,
    ]
    proc = procs.start(name, argv, port=port, log_dir=logs)
    started.append(proc)
    return proc


async def _smoke(scenario: Scenario) -> str | None:
    """Why the scenario cannot be measured (one short checked run), or None."""
    try:
        outcome = await run_load(scenario.target, concurrency=1, seconds=0.2, warmup=0)
    except Exception as exc:  # any failure here means "not measurable yet", with the reason
        return f"{type(exc).__name__}: {exc}"[:300]
    if outcome.errors:
        return f"{outcome.errors}/{outcome.requests} failed: {outcome.error_samples[0]}"
    return None


async def _interleaved(scenarios: list[Scenario], args: argparse.Namespace) -> list[dict[str, Any]]:
    runs = []
    for rep in range(args.reps):
        shift = rep % len(scenarios)
        order = scenarios[shift:] + scenarios[:shift]
        for scenario in order:
            levels = CONCURRENCIES if rep % 2 == 0 else tuple(reversed(CONCURRENCIES))
            for concurrency in levels:
                runs.append(await _measure(scenario, concurrency, rep, args))
    return runs


async def _measure(
    scenario: Scenario, concurrency: int, rep: int, args: argparse.Namespace
) -> dict[str, Any]:
    counters: dict[str, dict[str, float]] = {}

    def on_measure(phase: str) -> None:
        counters[phase] = {
            "upstream": scenario.upstream_proc.cpu_seconds(),
            "gateway": scenario.gateway_proc.cpu_seconds() if scenario.gateway_proc else 0.0,
            "loadgen": procs.own_cpu_seconds(),
            "machine": procs.machine_busy_seconds(),
            "wall": time.perf_counter(),
        }

    outcome = await run_load(
        scenario.target,
        concurrency=concurrency,
        seconds=args.seconds,
        warmup=args.warmup,
        on_measure=on_measure,
    )
    done = max(outcome.requests, 1)
    cpu = {
        f"{who}_cpu_ms_per_request": round(
            (counters["stop"][who] - counters["start"][who]) * 1000 / done, 4
        )
        for who in ("upstream", "gateway", "loadgen")
    }
    if scenario.gateway_proc is None:
        cpu.pop("gateway_cpu_ms_per_request")
    # CPU that processes outside this benchmark took meanwhile, as a share of all cores:
    # other work on the machine slows every scenario, so it is reported, not hidden.
    delta = {who: counters["stop"][who] - counters["start"][who] for who in counters["start"]}
    ours = delta["upstream"] + delta["gateway"] + delta["loadgen"]
    cores = os.cpu_count() or 1
    foreign = max(0.0, delta["machine"] - ours) / (delta["wall"] * cores)
    return {
        "scenario": scenario.name,
        "upstream": scenario.upstream,
        "concurrency": concurrency,
        "rep": rep,
        **outcome.summary(),
        **cpu,
        "foreign_cpu_share": round(foreign, 3),
        "gateway_rss_mib": round(scenario.gateway_proc.rss_mib(), 1)
        if scenario.gateway_proc
        else None,
    }


async def _cold_starts(
    specs: list[GatewaySpec],
    urls: dict[str, str],
    live: list[Scenario],
    logs: Path,
    count: int,
) -> dict[str, Any]:
    """Process start to the first successful proxied calls, on an already migrated database."""
    measured: dict[str, Any] = {}
    live_names = {s.name for s in live}
    for spec in specs:
        # The target is for the full policy set; the policy-free gateway gets one start.
        if spec.name not in live_names:
            continue
        starts = count if spec.policies else min(count, 1)
        samples, ready, rss = [], [], []
        for index in range(starts):
            proc = gateway.start_gateway(spec, logs, suffix=f"-cold-{index}")
            try:
                redacts = redacted_values(spec.policies)
                target = Target(spec.name, f"{proc.url}/mcp", spec.keys["sdk"], redacts)
                ready.append(round(await first_health(f"{proc.url}/health", proc.started_at), 3))
                samples.append(round(await first_success(target, proc.started_at), 3))
                rss.append(round(proc.rss_mib(), 1))
            finally:
                proc.stop()
        measured[spec.name] = {
            "seconds": samples,
            "health_ok_seconds": ready,
            "rss_after_first_call_mib": rss,
        }
    return measured


if __name__ == "__main__":
    main()

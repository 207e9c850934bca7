"""Medians of the interleaved runs, comparisons with direct, the targets, and a Markdown view."""

from __future__ import annotations

import statistics
from typing import Any

METRICS = ("rps", "p50_ms", "p90_ms", "p99_ms")
CPU = (
    "gateway_cpu_ms_per_request",
    "upstream_cpu_ms_per_request",
    "loadgen_cpu_ms_per_request",
    "foreign_cpu_share",
)
FULL = ("gateway_full", "gateway_full_pg")
LINEAR_EXPONENT = 1.25  # time ~ size^k; noise keeps k a little above 1.0 for linear scans


def _direct_of(scenario: str) -> str:
    return "stub_direct" if scenario.startswith("stub_") else "direct"


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for run in results.get("runs", []):
        groups.setdefault((run["scenario"], run["concurrency"]), []).append(run)
    medians: dict[str, dict[str, Any]] = {}
    for (scenario, concurrency), runs in groups.items():
        entry: dict[str, Any] = {"runs": len(runs)}
        for key in METRICS + CPU:
            values = [r[key] for r in runs if r.get(key) is not None]
            entry[key] = round(statistics.median(values), 4) if values else None
        entry["errors"] = sum(r["errors"] for r in runs)
        entry["requests"] = sum(r["requests"] for r in runs)
        rss = [r["gateway_rss_mib"] for r in runs if r.get("gateway_rss_mib") is not None]
        entry["gateway_rss_mib_max"] = max(rss) if rss else None
        medians[f"{scenario}@{concurrency}"] = entry
    comparisons: dict[str, dict[str, Any]] = {}
    for key, entry in medians.items():
        scenario, concurrency = key.split("@")
        if scenario in ("direct", "stub_direct"):
            continue
        direct = medians.get(f"{_direct_of(scenario)}@{concurrency}")
        if direct is None:
            continue
        comparisons[key] = {
            "added_p50_ms": round(entry["p50_ms"] - direct["p50_ms"], 3),
            "added_p90_ms": round(entry["p90_ms"] - direct["p90_ms"], 3),
            "added_p99_ms": round(entry["p99_ms"] - direct["p99_ms"], 3),
            "throughput_vs_direct": round(entry["rps"] / direct["rps"], 3),
        }
    summary = {"medians": medians, "comparisons": comparisons}
    summary["targets"] = {name: _targets(name, summary, results) for name in FULL}
    summary["targets"] = {k: v for k, v in summary["targets"].items() if v}
    return summary


def _targets(name: str, summary: dict[str, Any], results: dict[str, Any]) -> list[dict[str, Any]]:
    medians, comparisons = summary["medians"], summary["comparisons"]
    if f"{name}@1" not in medians:
        return []
    rows: list[dict[str, Any]] = []

    def add(label: str, goal: str, value: Any, met: bool | None) -> None:
        rows.append({"target": label, "goal": goal, "measured": value, "met": met})

    c1, c32 = comparisons.get(f"{name}@1", {}), comparisons.get(f"{name}@32", {})
    add("added p50, c=1", "<= 1.0 ms", c1.get("added_p50_ms"), _le(c1.get("added_p50_ms"), 1.0))
    add("added p99, c=1", "<= 2.5 ms", c1.get("added_p99_ms"), _le(c1.get("added_p99_ms"), 2.5))
    ratio = c32.get("throughput_vs_direct")
    add("throughput c=32 vs direct", ">= 0.90", ratio, None if ratio is None else ratio >= 0.9)
    cpu = [medians.get(f"{name}@{c}", {}).get("gateway_cpu_ms_per_request") for c in (1, 32)]
    worst = max((v for v in cpu if v is not None), default=None)
    add("gateway CPU per request (worst of c=1, c=32)", "<= 0.5 ms", worst, _le(worst, 0.5))
    stub = medians.get(f"stub_{name}@32", {}).get("rps")
    add("req/s from one process, stub upstream, c=32", ">= 2500", stub,
        None if stub is None else stub >= 2500)  # fmt: skip
    rss = results.get("rss_mib", {}).get(name, {})
    run_max = max(medians.get(f"{name}@{c}", {}).get("gateway_rss_mib_max") or 0 for c in (1, 32))
    worst_rss = max(rss.get("rss", 0), run_max) or None
    add("resident memory (after load)", "<= 80 MiB", worst_rss, _le(worst_rss, 80))
    admin = rss.get("after_control_plane")
    add("resident memory, then one control-plane request", "<= 80 MiB", admin, _le(admin, 80))
    session = rss.get("after_admin_session")
    add("resident memory, then an admin's login and request", "<= 80 MiB", session,
        _le(session, 80))  # fmt: skip
    cold = results.get("cold_start", {}).get(name, {}).get("seconds") or []
    cold_median = round(statistics.median(cold), 3) if cold else None
    add("cold start (median)", "< 1.5 s", cold_median, _le(cold_median, 1.499))
    level, scan_cost = _scan_level(results)
    if scan_cost:
        mb = scan_cost["realistic"][-1]["mb_per_s"]
        add(f"scan 1 MB ({level})", ">= 20 MB/s", mb, mb >= 20)
        exponents = {k: v["growth_exponent"] for k, v in scan_cost["adversarial"].items()}
        worst_case = max(exponents, key=lambda k: exponents[k] or 0)
        value = f"{exponents[worst_case]} ({worst_case})"
        add(f"adversarial growth exponent, worst ({level})", f"<= {LINEAR_EXPONENT} (linear)",
            value, (exponents[worst_case] or 0) <= LINEAR_EXPONENT)  # fmt: skip
        slowest = min(
            (p["mb_per_s"], k) for k, v in scan_cost["adversarial"].items()
            for p in v["points"][-1:] if "mb_per_s" in p
        )  # fmt: skip
        add(f"slowest adversarial 1 MB ({level})", "(no target; >= 20 MB/s hoped)",
            f"{slowest[0]} MB/s ({slowest[1]})", None)  # fmt: skip
    memory = (results.get("scan_cost") or {}).get("scanner_memory")
    if memory:
        add("scanner memory after varied text", "(part of the 80 MiB)",
            f"+{memory['rss_growth_mib']} MiB", None)  # fmt: skip
    return rows


def _scan_level(results: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """The guardrail pipeline's scan cost when guardrails exist, else the engine's."""
    scan_cost = results.get("scan_cost") or {}
    for level in ("pipeline", "engine"):
        if (scan_cost.get(level) or {}).get("available"):
            return level, scan_cost[level]
    return "", None


def _le(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _built(system: dict[str, Any]) -> str:
    """The interpreter's path: which build ran it (Makefile, BENCH_PYTHON)."""
    executable = system.get("python_executable")
    return f" ({executable})" if executable else ""


def render(results: dict[str, Any]) -> str:
    system = results.get("system", {})
    packages = system.get("packages", {})
    summary = results.get("summary", {})
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {system.get('cpu')}, {system.get('cores')} cores, "
        f"{system.get('memory_gib')} GiB, Linux {system.get('kernel')}, "
        f"Python {system.get('python')}{_built(system)}; PostgreSQL {system.get('postgres')}, "
        f"Redis {system.get('redis')}. Commit {system.get('git_commit')}"
        f"{' (src/ modified)' if system.get('git_dirty') else ''}.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in packages.items() if v) + ".",
        f"Settings: {results.get('settings')}; harness took {results.get('harness_seconds')} s "
        f"({results.get('phase_seconds')}).",
        f"Load average at start {results.get('load_average_at_start')}, at end "
        f"{results.get('load_average_at_end')}; 'other load' below is the share of all cores "
        "used by processes outside the benchmark during each run (median).",
        "",
    ]
    unavailable = {k: v for k, v in results.get("scenarios", {}).items() if v != "ok"}
    if unavailable:
        lines += ["Scenarios not measured:", ""]
        lines += [f"- `{k}`: {v}" for k, v in unavailable.items()] + [""]
    missing = results.get("policy_set", {}).get("missing_types")
    if missing:
        lines += [f"Guardrail types not registered (left out of the full set): {missing}", ""]
    if summary.get("medians"):
        lines += ["## Summary", "", compact(results)]
    lines += _latency_table(summary)
    lines += _targets_table(summary)
    lines += _other_tables(results)
    return "\n".join(lines) + "\n"


def _latency_table(summary: dict[str, Any]) -> list[str]:
    lines = [
        "## Latency and throughput (medians of interleaved runs)",
        "",
        "| scenario | c | req/s | p50 ms | p90 ms | p99 ms | added p50 | added p99 | vs direct "
        "| gateway CPU ms/req | upstream CPU ms/req | loadgen CPU ms/req | other load "
        "| errors/requests |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    comparisons = summary.get("comparisons", {})
    for key, entry in summary.get("medians", {}).items():
        scenario, concurrency = key.split("@")
        comparison = comparisons.get(key, {})
        lines.append(
            f"| {scenario} | {concurrency} | {_fmt(entry['rps'], 0)} | {_fmt(entry['p50_ms'])} "
            f"| {_fmt(entry['p90_ms'])} | {_fmt(entry['p99_ms'])} "
            f"| {_fmt(comparison.get('added_p50_ms'))} | {_fmt(comparison.get('added_p99_ms'))} "
            f"| {_fmt(comparison.get('throughput_vs_direct'))} "
            f"| {_fmt(entry['gateway_cpu_ms_per_request'], 3)} "
            f"| {_fmt(entry['upstream_cpu_ms_per_request'], 3)} "
            f"| {_fmt(entry['loadgen_cpu_ms_per_request'], 3)} "
            f"| {_fmt(entry['foreign_cpu_share'])} "
            f"| {entry['errors']}/{entry['requests']} |"
        )
    return [*lines, ""]


def _targets_table(summary: dict[str, Any]) -> list[str]:
    lines = []
    for name, rows in summary.get("targets", {}).items():
        lines += [f"## Targets: {name}", "", "| target | goal | measured | |", "|---|---|---|---|"]
        for row in rows:
            verdict = {True: "met", False: "**missed**", None: "not measured"}[row["met"]]
            lines.append(
                f"| {row['target']} | {row['goal']} | {_fmt(row['measured'], 3)} | {verdict} |"
            )
        lines.append("")
    return lines


def _other_tables(results: dict[str, Any]) -> list[str]:
    lines = [
        "## Memory, cold start, audit",
        "",
        "| process | RSS MiB | peak MiB | RSS after one control-plane request "
        "| then after an admin's login and request |",
        "|---|---|---|---|---|",
    ]
    for name, rss in results.get("rss_mib", {}).items():
        admin = rss.get("after_control_plane", "-")
        session = rss.get("after_admin_session", "-")
        lines.append(f"| {name} | {rss['rss']} | {rss['peak']} | {admin} | {session} |")
    lines.append("")
    for name, cold in results.get("cold_start", {}).items():
        lines.append(
            f"- cold start `{name}`: first successful proxied calls after {cold['seconds']} s "
            f"(/health answered after {cold.get('health_ok_seconds')} s; resident memory "
            f"right after the first call {cold.get('rss_after_first_call_mib')} MiB)"
        )
    for name, count in results.get("audit_events", {}).items():
        lines.append(f"- audit events written by `{name}`: {count}")
    lines.append("")
    lines += _guardrail_cost_table(results.get("guardrail_cost") or {})
    lines += _overheads_table(results)
    scan_costs = results.get("scan_cost") or {}
    for level in ("engine", "pipeline"):
        if level in scan_costs:
            lines += _scan_table(level, scan_costs[level])
    memory = scan_costs.get("scanner_memory")
    if memory:
        lines += [
            f"Varied text, every detector in one scanner, in a fresh process: "
            f"{memory['bytes'] / 1e6:.1f} MB of texts that never repeat scanned at "
            f"{memory['mb_per_s']} MB/s, resident memory +{memory['rss_growth_mib']} MiB "
            "(RE2's DFA caches).",
            "",
        ]
    profiles = results.get("profiles") or {}
    for name, prof in profiles.items():
        if not isinstance(prof, dict) or "samples" not in prof:
            continue
        lines += [
            f"## Profile: {name} at c=32 ({prof['samples']} samples, `{prof['file']}`)",
            "",
            "Inclusive share by area: "
            + ", ".join(f"{a} {p}%" for a, p in prof["area_inclusive_percent"].items()),
            "",
            "Top self time: " + "; ".join(f"{n} {p}%" for n, p in prof["self_percent"][:10]),
            "",
            "Cerberus functions (inclusive): "
            + "; ".join(f"{n} {p}%" for n, p in prof["cerberus_inclusive_percent"][:12]),
            "",
        ]
    return lines


def _scan_table(level: str, scan_cost: dict[str, Any]) -> list[str]:
    title = {"engine": "scanning engine alone", "pipeline": "guardrail pipeline"}[level]
    if not scan_cost.get("available"):
        return [f"## Scan cost: {title}", "", f"Not measured: {scan_cost.get('reason')}", ""]
    lines = [f"## Scan cost: {title}", ""]
    if scan_cost.get("guardrails"):
        lines += [f"Guardrails: {', '.join(scan_cost['guardrails'])}", ""]
    lines += ["| tool result | ms | MB/s | outcome |", "|---|---|---|---|"]
    for point in scan_cost["realistic"]:
        lines.append(
            f"| {point['bytes']:,} B | {point['seconds'] * 1000:.2f} | {point['mb_per_s']} "
            f"| {point['outcome']} |"
        )
    lines += [
        "",
        "| adversarial input | ms at each size (outcome) | MB/s at the largest | growth exponent |",
        "|---|---|---|---|",
    ]
    for name, case in scan_cost["adversarial"].items():
        points = case["points"]
        sizes = ", ".join(
            f"{p.get('bytes', p.get('depth')):,}{'' if 'bytes' in p else ' deep'}: "
            f"{p['seconds'] * 1000:.2f} ({p['outcome']})"
            for p in points
        )
        speed = points[-1].get("mb_per_s", "-")
        lines.append(f"| {name} | {sizes} | {speed} | {case['growth_exponent']} |")
    return [*lines, ""]


def _guardrail_cost_table(cost: dict[str, Any]) -> list[str]:
    if not cost:
        return []
    per_call = cost["per_call_ms"]
    lines = [
        "## Guardrail CPU per call, in process (best of 7 batches of 200)",
        "",
        "Full policy set, request and answer of one call: "
        + ", ".join(f"{tool} {ms:.3f} ms" for tool, ms in per_call.items())
        + ". One walk and one scan with every detector (the floor a fused pipeline could "
        "reach, without redaction): "
        + ", ".join(f"{t} {ms:.3f} ms" for t, ms in cost.get("one_pass_scan_ms", {}).items())
        + ". Each guardrail alone (ms):",
        "",
        "| guardrail | " + " | ".join(next(iter(cost["per_guardrail_ms"].values()), {})) + " |",
    ]
    columns = list(next(iter(cost["per_guardrail_ms"].values()), {}))
    lines.append("|---|" + "---|" * len(columns))
    for name, timings in cost["per_guardrail_ms"].items():
        cells = " | ".join(_fmt(timings.get(column), 4) for column in columns)
        lines.append(f"| {name} | {cells} |")
    return [*lines, "", *_pipeline_steps_table(cost.get("pipeline_steps_us") or {})]


COPY_STEP = "copy the redacted message"


def _pipeline_steps_table(steps: dict[str, dict[str, float]]) -> list[str]:
    """The pipeline's own time per message, step by step (µs; blank: not in that direction)."""
    if not steps:
        return []
    messages = list(steps)
    names = list(dict.fromkeys(name for timings in steps.values() for name in timings))
    names.sort(key=lambda name: name == COPY_STEP)  # the copy comes last, as in the pipeline
    lines = [
        "Inside the pipeline, per message, step by step (µs; a text guardrail's step holds the "
        "text pass, scan or rescan it is the first to need):",
        "",
        "| step | " + " | ".join(messages) + " |",
        "|---|" + "---|" * len(messages),
    ]
    for name in names:
        cells = " | ".join(_fmt(steps[message].get(name), 2) for message in messages)
        lines.append(f"| {name} | {cells} |")
    totals = " | ".join(_fmt(sum(steps[message].values()), 2) for message in messages)
    lines.append(f"| all steps | {totals} |")
    return [*lines, ""]


def _overheads_table(results: dict[str, Any]) -> list[str]:
    costs = results.get("overheads_us") or {}
    if not costs:
        return []
    lines = [
        "## Fixed costs per request outside the guardrails, in process (best of 7 x 2,000)",
        "",
        "| step | µs each |",
        "|---|---|",
    ]
    lines += [f"| {name} | {micros} |" for name, micros in costs.items()]
    for name, micros in (results.get("audit_write_us_per_event") or {}).items():
        lines.append(f"| audit event written in batches of 500 (`{name}`, CPU) | {micros} |")
    return [*lines, ""]


COMPACT = (
    ("direct", "direct"),
    ("reference_proxy", "reference proxy"),
    ("gateway_none", "Cerberus, no policy"),
    ("gateway_full", "Cerberus, full set (SQLite)"),
    ("gateway_full_pg", "Cerberus, full set (PostgreSQL + Redis)"),
)


def compact(results: dict[str, Any]) -> str:
    """The one-screen comparison docs/benchmarks.md opens with."""
    medians = results["summary"]["medians"]
    ratios = results["summary"]["comparisons"]
    names = [(key, label) for key, label in COMPACT if f"{key}@1" in medians]

    def cell(key: str, concurrency: int, field: str, digits: int = 2) -> str:
        return _fmt(medians.get(f"{key}@{concurrency}", {}).get(field), digits)

    def stub(key: str) -> str:
        return "stub_direct" if key == "direct" else f"stub_{key}"

    rows = [
        "| | " + " | ".join(label for _, label in names) + " |",
        "|---|" + "---|" * len(names),
        "| SDK upstream, c=1: p50 / p99 ms | "
        + " | ".join(f"{cell(k, 1, 'p50_ms')} / {cell(k, 1, 'p99_ms')}" for k, _ in names)
        + " |",
        "| SDK upstream, c=32: req/s (vs direct) | "
        + " | ".join(
            cell(k, 32, "rps", 0)
            + (
                ""
                if k == "direct"
                else f" ({_fmt(ratios.get(f'{k}@32', {}).get('throughput_vs_direct'))})"
            )
            for k, _ in names
        )
        + " |",
        "| stub upstream, c=32: req/s | "
        + " | ".join(cell(stub(k), 32, "rps", 0) for k, _ in names)
        + " |",
        "| proxy CPU ms per request, SDK upstream (c=1 / c=32) | "
        + " | ".join(
            "-"
            if k == "direct"
            else f"{cell(k, 1, 'gateway_cpu_ms_per_request', 3)} / "
            f"{cell(k, 32, 'gateway_cpu_ms_per_request', 3)}"
            for k, _ in names
        )
        + " |",
        "| proxy CPU ms per request, stub upstream (c=1 / c=32) | "
        + " | ".join(
            "-"
            if k == "direct"
            else f"{cell(stub(k), 1, 'gateway_cpu_ms_per_request', 3)} / "
            f"{cell(stub(k), 32, 'gateway_cpu_ms_per_request', 3)}"
            for k, _ in names
        )
        + " |",
        "| resident memory after load, MiB | "
        + " | ".join(str(results.get("rss_mib", {}).get(k, {}).get("rss", "-")) for k, _ in names)
        + " |",
        "| cold start to first proxied calls, s (each start) | "
        + " | ".join(
            str(results.get("cold_start", {}).get(k, {}).get("seconds", "-")) for k, _ in names
        )
        + " |",
    ]
    runs = results.get("runs", [])
    rows += [
        "",
        f"Checked calls: {sum(r['requests'] for r in runs):,}, errors: "
        f"{sum(r['errors'] for r in runs)}. Other load during the runs (share of all cores "
        f"used outside the benchmark): "
        f"{min(r['foreign_cpu_share'] for r in runs):.2f}-"
        f"{max(r['foreign_cpu_share'] for r in runs):.2f}.",
    ]
    return "\n".join(rows) + "\n"

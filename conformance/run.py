"""`make conformance`: the official MCP conformance suite against the fixture upstream directly,
then through Cerberus, with a table of both and a non-zero exit when the gateway breaks a check
the upstream passes.

Starts (and stops, by PID) the fixture upstream, `cerberus serve` on a temporary embedded
database with one tenant (or N instances on a given PostgreSQL + Redis: --instances,
--database-url, --redis-url), and the auth forwarder the suite talks to. Results go to
conformance/results/<timestamp>/ (gitignored): raw checks per target and suite, logs, and
summary.json / summary.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from gateway import Backing, count_audit_events, running, start_gateway
from processes import Process, free_port, start, wait_until_serving
from suite import (
    SUITES,
    Regression,
    ScenarioResult,
    Suite,
    installed,
    regressions,
    run_suite,
    unscored,
)

HERE = Path(__file__).resolve().parent
Results = dict[str, dict[str, dict[str, ScenarioResult]]]


def main() -> int:
    args = parse_args()
    missing = installed(args.npm_dir)
    if missing:
        sys.stderr.write(f"error: conformance suite {missing}\n")
        return 2
    output = args.output or HERE / "results" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    logs = output / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    suites = [suite for suite in SUITES if not args.suite or suite.name in args.suite]
    results: Results = {"direct": {}, "cerberus": {}}
    audited: list[int] = []
    with ExitStack() as stack:
        upstream = stack.enter_context(running(start_upstream(logs)))
        wait_until_serving(upstream)
        targets = {"direct": f"{upstream.base_url}/mcp"}
        if not args.direct_only:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cerberus-")))
            backing = Backing(data_dir, args.database_url, args.redis_url)
            with ExitStack() as gateway_stack:
                gateway = start_gateway(
                    gateway_stack,
                    f"{upstream.base_url}/mcp",
                    backing,
                    logs,
                    instances=args.instances,
                    starter_policies=args.starter_policies,
                )
                targets["cerberus"] = gateway.base_url + args.endpoint
                run_all(args, suites, targets, results, output)
            audited.append(count_audit_events(gateway))
        else:
            run_all(args, suites, targets, results, output)
    found = [
        regression
        for suite in suites
        if not args.direct_only
        for regression in regressions(
            suite.name, results["direct"][suite.name], results["cerberus"][suite.name]
        )
    ]
    report = summarise(args.npm_dir, suites, results, found, args.direct_only)
    if audited:
        report += f"\nCerberus recorded {audited[0]} audit events for these runs.\n"
    (output / "summary.md").write_text(report)
    (output / "summary.json").write_text(json.dumps(as_json(results, found), indent=2))
    say(report)
    say(f"results: {output}")
    return 1 if found else 0


def run_all(
    args: argparse.Namespace,
    suites: list[Suite],
    targets: dict[str, str],
    results: Results,
    output: Path,
) -> None:
    for suite in suites:
        for target, url in targets.items():
            say(f"running {suite.name} against {target} ({url}) ...")
            results[target][suite.name] = run_suite(
                args.npm_dir, suite, url, output / target / suite.name, scenarios=args.scenario
            )


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npm-dir", type=Path, default=HERE / ".npm")
    parser.add_argument("--output", type=Path, help="results directory (default: timestamped)")
    parser.add_argument("--suite", action="append", choices=[s.name for s in SUITES])
    parser.add_argument("--scenario", action="append", default=[], help="only these scenarios")
    parser.add_argument("--direct-only", action="store_true", help="skip the run through Cerberus")
    parser.add_argument("--database-url", help="Cerberus' database (default: a temporary SQLite)")
    parser.add_argument("--redis-url", help="Cerberus' shared cache (default: in-process)")
    parser.add_argument(
        "--instances", type=int, default=1, help="Cerberus instances, taking requests in turn"
    )
    parser.add_argument(
        "--endpoint",
        default="/mcp",
        help="Cerberus' MCP endpoint to test (or /governance-plane/api/v1/proxy)",
    )
    parser.add_argument(
        "--starter-policies",
        action="store_true",
        help="give the tenant the `cerberus demo` starter policies (rate limits left out)",
    )
    args = parser.parse_args()
    if args.instances > 1 and not args.redis_url:
        parser.error("--instances above 1 needs --redis-url: instances share sessions through it")
    args.scenario = tuple(args.scenario)
    return args


def start_upstream(logs: Path) -> Process:
    port = free_port()
    argv = [sys.executable, str(HERE / "upstream.py"), "--port", str(port)]
    return start("upstream", argv, port=port, log_dir=logs)


def verdict(direct: ScenarioResult, gateway: ScenarioResult | None, broken: bool) -> str:
    if gateway is None:
        return "-"
    if broken:
        return "REGRESSION"
    if direct.failed:
        return "fails directly too"
    return "ok"


def summarise(
    npm_dir: Path, suites: list[Suite], results: Results, found: list[Regression], direct_only: bool
) -> str:
    lines = []
    broken = {(r.suite, r.scenario) for r in found}
    for suite in suites:
        direct = results["direct"][suite.name]
        gateway = results["cerberus"].get(suite.name, {})
        not_scored = unscored(npm_dir, suite)
        lines += [f"\n## {suite.name}: {suite.about}\n"]
        lines += ["| scenario | scored | direct | through Cerberus | |", "|---|---|---|---|---|"]
        for name, result in sorted(direct.items()):
            through = gateway.get(name)
            counts = through.counts() if through else "-"
            mark = verdict(result, through, (suite.name, name) in broken)
            scored = f"no ({not_scored[name]})" if name in not_scored else "yes"
            lines.append(f"| {name} | {scored} | {result.counts()} | {counts} | {mark} |")
        scored_names = [name for name in direct if name not in not_scored]
        failing = sum(direct[name].failed for name in scored_names)
        lines.append(
            f"\n{len(direct)} scenarios ({len(scored_names)} scored); "
            f"{failing} scored scenario(s) fail directly."
        )
    if not direct_only:
        lines.append(f"\n## Regressions through Cerberus: {len(found)}\n")
        for r in found:
            lines.append(f"- {r.suite} / {r.scenario} / {r.check}: {r.direct} -> {r.gateway}")
            if r.message:
                lines.append(f"  {r.message[:500]}")
    return "\n".join(lines) + "\n"


def as_json(results: Results, found: list[Regression]) -> dict[str, object]:
    return {
        "results": {
            target: {
                suite: {name: [asdict(c) for c in result.checks] for name, result in by.items()}
                for suite, by in suites.items()
            }
            for target, suites in results.items()
        },
        "regressions": [asdict(r) for r in found],
    }


if __name__ == "__main__":
    sys.exit(main())

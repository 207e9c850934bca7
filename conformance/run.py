"""`make conformance`: the official MCP conformance suite against the fixture upstream directly,
then through Cerberus, with a table of both and a non-zero exit when the gateway breaks a check
the upstream passes.

Starts (and stops, by PID) the fixture upstream, a `cerberus serve` on a temporary embedded
database with one tenant, and the auth forwarder the suite talks to. Results go to
conformance/results/<timestamp>/ (gitignored): raw checks per target and suite, logs, and
summary.json / summary.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from contextlib import ExitStack
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from processes import Process, free_port, start, wait_until_serving
from provision import provision
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
BIN = Path(sys.executable).parent


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
    scenarios = tuple(args.scenario)
    results: Results = {"direct": {}, "cerberus": {}}
    audited: list[int] = []
    with ExitStack() as stack:
        upstream = stack.enter_context(running(start_upstream(logs)))
        wait_until_serving(upstream)
        targets = {"direct": f"{upstream.base_url}/mcp"}
        if not args.direct_only:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cerberus-")))
            # Registered before the gateway starts, so it runs after the gateway has stopped
            # (and drained its audit queue) but before the data directory is removed.
            stack.callback(lambda: audited.append(count_audit_events(data_dir)))
            targets["cerberus"] = start_gateway(stack, upstream, data_dir, logs)
        for suite in suites:
            for target, url in targets.items():
                say(f"running {suite.name} against {target} ({url}) ...")
                results[target][suite.name] = run_suite(
                    args.npm_dir, suite, url, output / target / suite.name, scenarios=scenarios
                )
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
    return parser.parse_args()


class running:
    """Stops the process (by its PID) when the block ends, however it ends."""

    def __init__(self, process: Process) -> None:
        self.process = process

    def __enter__(self) -> Process:
        return self.process

    def __exit__(self, *exc: object) -> None:
        self.process.stop()


def start_upstream(logs: Path) -> Process:
    port = free_port()
    argv = [sys.executable, str(HERE / "upstream.py"), "--port", str(port)]
    return start("upstream", argv, port=port, log_dir=logs)


def start_gateway(stack: ExitStack, upstream: Process, data_dir: Path, logs: Path) -> str:
    """Cerberus on an embedded database with one tenant, and the forwarder in front of it."""
    from cerberus.settings import Settings

    forwarder_port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        DATA_DIR=str(data_dir),
        APP_ENV="development",
        LOG_LEVEL="WARNING",
        # The suite's own origin (it sends Origin: http://<host:port of the URL it tests>).
        ALLOWED_ORIGINS=f"http://127.0.0.1:{forwarder_port},http://localhost:{forwarder_port}",
    )
    subprocess.run([str(BIN / "cerberus"), "migrate"], env=env, check=True, capture_output=True)
    settings = Settings(DATA_DIR=data_dir, DATABASE_URL=None, REDIS_URL=None)
    tenant = asyncio.run(provision(settings, f"{upstream.base_url}/mcp"))
    port = free_port()
    gateway = stack.enter_context(
        running(
            start(
                "cerberus",
                [str(BIN / "cerberus"), "serve", "--port", str(port)],
                port=port,
                log_dir=logs,
                env=env,
                cwd=data_dir,
            )
        )
    )
    wait_until_serving(gateway, "/health")
    refuses_anonymous(f"{gateway.base_url}/mcp")
    forwarder_argv = [
        sys.executable,
        str(HERE / "auth_forwarder.py"),
        "--port",
        str(forwarder_port),
        "--target",
        gateway.base_url,
    ]
    forwarder_env = {**os.environ, "CONFORMANCE_AGENT_KEY": tenant.key}
    forwarder = stack.enter_context(
        running(
            start("forwarder", forwarder_argv, port=forwarder_port, log_dir=logs, env=forwarder_env)
        )
    )
    wait_until_serving(forwarder)
    return f"{forwarder.base_url}/mcp"


def refuses_anonymous(url: str) -> None:
    """The suite must be talking to Cerberus' authenticated endpoint, not around it."""
    body = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status = int(response.status)
    except urllib.error.HTTPError as error:
        status = error.code
    if status != 401:
        raise RuntimeError(f"{url} answered {status} without an agent key; expected 401")


def count_audit_events(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "cerberus.db") as db:
        return int(db.execute("SELECT count(*) FROM audit_events").fetchone()[0])


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

"""Running the conformance suite's CLI and reading what it wrote: one `checks.json` per scenario.

The suite runs under the Node 22 that `make conformance` installs from npm (the machine's own
Node may be older); both suite versions sit side by side in separate npm prefixes.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

# The CLI names each result directory `server-<scenario>-<ISO timestamp>`.
RESULT_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$")
BAD = ("FAILURE", "WARNING")


@dataclass(frozen=True)
class Suite:
    """One way of running the suite: which installed version, with which selection flags."""

    name: str
    package: str  # npm prefix under the install dir: "legacy" or "modern"
    args: tuple[str, ...]
    about: str


SUITES = (
    Suite(
        "legacy",
        "legacy",
        (),
        "0.1.16 (stable): its active 2025-06-18 and 2025-11-25 scenarios",
    ),
    Suite(
        "2025-06-18",
        "modern",
        ("--spec-version", "2025-06-18"),
        "0.2.0-alpha.12: the scenarios that apply to 2025-06-18, at that version",
    ),
    Suite(
        "2025-11-25",
        "modern",
        ("--requirements", "2025-11-25"),
        "0.2.0-alpha.12: the 2025-11-25 set plus session lifecycle and SSE resumption",
    ),
    Suite(
        "2026-07-28",
        "modern",
        ("--requirements", "2026-07-28"),
        "0.2.0-alpha.12: the 2026-07-28 set (stateless, MRTR) plus unscored extensions",
    ),
)


@dataclass(frozen=True)
class Check:
    id: str
    status: str
    message: str


@dataclass
class ScenarioResult:
    scenario: str
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(check.status == "FAILURE" for check in self.checks)

    @property
    def warned(self) -> bool:
        return any(check.status == "WARNING" for check in self.checks)

    def counts(self) -> str:
        passed = sum(check.status == "SUCCESS" for check in self.checks)
        failed = sum(check.status == "FAILURE" for check in self.checks)
        warned = sum(check.status == "WARNING" for check in self.checks)
        text = f"{passed} ok"
        if failed:
            text += f", {failed} failed"
        if warned:
            text += f", {warned} warn"
        return text


def node_binary(npm_dir: Path) -> Path:
    return npm_dir / "node" / "node_modules" / ".bin" / "node"


def cli_script(npm_dir: Path, package: str) -> Path:
    return npm_dir / package / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist"


def installed(npm_dir: Path) -> str | None:
    """None when Node 22 and both suite versions are installed, else what is missing."""
    needed = [node_binary(npm_dir)] + [
        cli_script(npm_dir, package) / "index.js" for package in ("legacy", "modern")
    ]
    missing = [str(path) for path in needed if not path.exists()]
    return (
        f"not installed ({', '.join(missing)}); run `make conformance-install`" if missing else None
    )


def run_suite(
    npm_dir: Path,
    suite: Suite,
    url: str,
    output: Path,
    *,
    scenarios: tuple[str, ...] = (),
    timeout: float = 900,
) -> dict[str, ScenarioResult]:
    """Run the suite (or the named scenarios) against `url`; results by scenario name."""
    output.mkdir(parents=True, exist_ok=True)
    base = [str(node_binary(npm_dir)), str(cli_script(npm_dir, suite.package) / "index.js")]
    runs = (
        [
            [*base, "server", "--url", url, "--scenario", name, "-o", str(output)]
            for name in scenarios
        ]
        if scenarios
        else [[*base, "server", "--url", url, *suite.args, "-o", str(output)]]
    )
    if scenarios and suite.args[:1] in (("--requirements",), ("--spec-version",)):
        # A single scenario runs at the wire version the run names.
        runs = [[*run, "--spec-version", suite.args[1]] for run in runs]
    with (output / "suite.log").open("ab") as log:
        for argv in runs:
            # The CLI's exit status only says whether something failed; checks.json says what.
            subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, timeout=timeout, check=False)
    return read_results(output)


def unscored(npm_dir: Path, suite: Suite) -> dict[str, str]:
    """Scenarios the suite runs but does not score, with the reason its requirements file gives."""
    if suite.args[:1] != ("--requirements",):
        return {}
    path = cli_script(npm_dir, suite.package).parent / "requirements" / f"{suite.args[1]}.yaml"
    found: dict[str, str] = {}
    scenario = None
    for line in path.read_text().splitlines():
        # The file's not_scored entries are `- scenario: X` followed by `reason: Y`.
        stripped = line.strip()
        if stripped.startswith("- scenario:"):
            scenario = stripped.split(":", 1)[1].strip()
        elif stripped.startswith("reason:") and scenario:
            found[scenario] = stripped.split(":", 1)[1].strip()
            scenario = None
    return found


def read_results(output: Path) -> dict[str, ScenarioResult]:
    results: dict[str, ScenarioResult] = {}
    for directory in sorted(output.iterdir()):
        match = RESULT_DIR.match(directory.name)
        checks_file = directory / "checks.json"
        if not match or not checks_file.exists():
            continue
        result = results.setdefault(match["scenario"], ScenarioResult(match["scenario"]))
        for raw in json.loads(checks_file.read_text()):
            message = str(raw.get("errorMessage") or "")
            result.checks.append(Check(str(raw["id"]), str(raw["status"]), message))
    return results


@dataclass(frozen=True)
class Regression:
    """A check that succeeded against the upstream and did not (or did not run) through the
    gateway, or a failure or warning the gateway added."""

    suite: str
    scenario: str
    check: str
    direct: str
    gateway: str
    message: str


def regressions(
    suite: str, direct: dict[str, ScenarioResult], gateway: dict[str, ScenarioResult]
) -> list[Regression]:
    found: list[Regression] = []
    for name, result in direct.items():
        through = gateway.get(name)
        if through is None:
            found.append(Regression(suite, name, "(scenario)", "ran", "missing", "no result"))
            continue
        found += _compare(suite, name, result.checks, through.checks)
    return found


def _compare(
    suite: str, scenario: str, direct: list[Check], through: list[Check]
) -> list[Regression]:
    found: list[Regression] = []
    bad_before = {check.id for check in direct if check.status in BAD}
    reported: set[str] = set()
    for check in through:
        if check.status in BAD and check.id not in bad_before and check.id not in reported:
            reported.add(check.id)
            found.append(
                Regression(suite, scenario, check.id, "SUCCESS", check.status, check.message)
            )
    # A check that passed directly must pass as often through the gateway: a gateway that, say,
    # answers JSON where the upstream streamed SSE turns later checks into INFO or drops them.
    for check_id in dict.fromkeys(check.id for check in direct if check.status == "SUCCESS"):
        if check_id in reported:
            continue
        before = sum(c.id == check_id and c.status == "SUCCESS" for c in direct)
        after = [c for c in through if c.id == check_id]
        if sum(c.status == "SUCCESS" for c in after) < before:
            status = ",".join(sorted({c.status for c in after})) or "not run"
            message = next((c.message for c in after if c.message), "")
            found.append(Regression(suite, scenario, check_id, "SUCCESS", status, message))
    return found

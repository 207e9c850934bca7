"""Instructions the gateway executes per proxied call, counted by callgrind (deterministic).

CPU time per call moves by a tenth or more between runs on these shared machines, more than
most single changes to the hot path are worth. Valgrind's callgrind counts the instructions
a process executes instead, which come out nearly the same run after run (within ~0.5 %: the
audit writer's batches follow the clock) whatever else the machine does. Each gateway
(SQLite, the stub upstream) runs under callgrind; after a warm-up its counters are zeroed, a
fixed number of checked calls is made (alternately `echo` and `lookup`, as in the load
generator), and the counters are dumped: their total over the calls is the figure.
Callgrind runs the process ~50 times slower, so this is a separate command, not part of
`make bench`. Instructions are not time (cache misses and the kernel's work are not in
them): they judge a change to the same work, not a machine.

    .venv/bin/python -m bench.instructions

To compare code side by side, name other source trees (a second checkout's `src`):

    .venv/bin/python -m bench.instructions --variant before=/tmp/before/src

or other interpreters, each a virtual environment's python with Cerberus installed in it
(`python3.12 -m venv /tmp/v312 && /tmp/v312/bin/pip install -e '.[dev]'`):

    .venv/bin/python -m bench.instructions --python 3.12=/tmp/v312/bin/python

Against the SDK upstream instead of the stub (`--upstream sdk`), a call executes nearly the
same instructions in the gateway, where `make bench` measures 25-35 % more CPU time per
call: that difference is the machine's, not the gateway's work (docs/benchmarks.md).

Results go to bench/results/instructions.json.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
import orjson

from bench import gateway, procs
from bench.loadgen import McpClient, Target
from bench.policies import full_policy_set, redacted_values

RESULTS = Path(__file__).parent / "results"
# The upstream servers a counted gateway can call, by the module that runs each.
UPSTREAMS = {"stub": "bench.stub_upstream", "sdk": "bench.upstream"}
SOURCE = Path(__file__).resolve().parent.parent / "src"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="counted calls per gateway")
    parser.add_argument("--warmup", type=int, default=300, help="calls before counting")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=SRC",
        help="another source tree to measure beside this checkout's (repeatable)",
    )
    parser.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="NAME=PYTHON",
        help="this checkout under another interpreter: a venv's python with Cerberus installed",
    )
    parser.add_argument(
        "--policies", choices=("none", "full", "both"), default="both", help="policy sets"
    )
    parser.add_argument(
        "--upstream",
        choices=tuple(UPSTREAMS),
        default="stub",
        help="the upstream the gateway calls: the stub, or the MCP SDK's server",
    )
    return parser.parse_args()


class Variant(NamedTuple):
    """What one measured gateway runs: a source tree, with an interpreter."""

    src: Path
    python: Path


def variants(named: Sequence[str], pythons: Sequence[str] = ()) -> dict[str, Variant]:
    this = Path(procs.PYTHON)
    found = {"this checkout": Variant(SOURCE, this)}
    for item in named:
        name, sep, src = item.partition("=")
        if not sep or not name or not (Path(src) / "cerberus").is_dir():
            raise SystemExit(f"--variant {item!r}: expected NAME=SRC, SRC holding cerberus/")
        found[name] = Variant(Path(src).resolve(), this)
    for item in pythons:
        name, interpreter = procs.other_python(item)
        found[name] = Variant(SOURCE, interpreter)
    return found


def callgrind_total(path: Path) -> int:
    """The instruction count of one callgrind dump (its `totals:` or `summary:` line)."""
    with path.open() as dump:
        for line in dump:
            if line.startswith(("totals:", "summary:")):
                return int(line.split()[1])
    raise ValueError(f"{path}: no totals in this callgrind dump")


async def drive(target: Target, calls: int, concurrency: int) -> None:
    """`calls` checked tool calls from `concurrency` MCP clients (each answer's content is
    checked as in the load generator: a wrong answer raises)."""
    async with aiohttp.ClientSession() as http:
        clients = [McpClient(http, target, number + 1) for number in range(concurrency)]
        await asyncio.gather(*(client.initialize() for client in clients))
        shares = [calls // concurrency + (i < calls % concurrency) for i in range(concurrency)]

        async def run(client: McpClient, count: int) -> None:
            for _ in range(count):
                await client.call()

        await asyncio.gather(*(run(c, n) for c, n in zip(clients, shares, strict=True)))


async def measure_one(
    name: str,
    variant: Variant,
    policies: list[dict[str, Any]],
    upstream_url: str,
    work: Path,
    args: argparse.Namespace,
) -> int:
    """Instructions per call of one gateway under callgrind."""
    logs = work / "logs"
    spec = gateway.embedded_spec(name, work, policies)
    await gateway.seed(spec, {"sdk": upstream_url, "stub": upstream_url})
    out = work / f"{name}.callgrind"
    port = procs.free_port()
    argv = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        str(variant.python),
        str(variant.python.parent / "cerberus"),
        "serve",
        "--port",
        str(port),
    ]
    env = {**spec.env, "PYTHONPATH": str(variant.src)}
    proc = procs.start(name, argv, port=port, log_dir=logs, env=env, cwd=spec.data_dir)
    try:
        await asyncio.to_thread(procs.wait_http, proc, "/health", 600)
        target = Target(name, f"{proc.url}/mcp", spec.keys["stub"], redacted_values(policies))
        await drive(target, args.warmup, args.concurrency)
        callgrind_control("-z", proc.pid)  # zero the counters: start-up and warm-up are not counted
        await drive(target, args.calls, args.concurrency)
        callgrind_control("-d", proc.pid)  # dump what the counted calls executed, as <out>.1
        return callgrind_total(Path(f"{out}.1")) // args.calls
    finally:
        proc.stop()


def _version(python: Path) -> str:
    done = subprocess.run(
        [str(python), "-c", "import platform; print(platform.python_version())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def callgrind_control(option: str, pid: int) -> None:
    """`callgrind_control OPTION PID` (-z zeroes the counters, -d dumps them)."""
    subprocess.run(["callgrind_control", option, str(pid)], check=True, capture_output=True)


def require_callgrind() -> None:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind (with callgrind_control) is not installed")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    require_callgrind()
    work = RESULTS / "tmp" / "instructions"
    shutil.rmtree(work, ignore_errors=True)
    (work / "logs").mkdir(parents=True)
    sets: dict[str, list[dict[str, Any]]] = {"none": [], "full": full_policy_set().policies}
    if args.policies != "both":
        sets = {args.policies: sets[args.policies]}
    port = procs.free_port()
    argv = [procs.PYTHON, "-m", UPSTREAMS[args.upstream], "--port", str(port)]
    upstream = procs.start(f"upstream_{args.upstream}", argv, port=port, log_dir=work / "logs")
    results: dict[str, Any] = {
        "settings": {k: v for k, v in vars(args).items() if k not in ("variant", "python")},
        "instructions_per_call": {},
    }
    try:
        procs.wait_http(upstream, "/mcp")
        for index, (label, variant) in enumerate(variants(args.variant, args.python).items()):
            counts = results["instructions_per_call"][label] = {
                "src": str(variant.src),
                "python": _version(variant.python),
            }
            for policy_name, policies in sets.items():
                name = f"v{index}_{policy_name}"
                counts[policy_name] = await measure_one(
                    name, variant, policies, f"{upstream.url}/mcp", work, args
                )
                print(f"{label}, {policy_name}: {counts[policy_name]:,} instructions per call")  # noqa: T201
    finally:
        upstream.stop()
    return results


def main() -> None:
    results = asyncio.run(run(parse_args()))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "instructions.json").write_bytes(
        orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n"
    )


if __name__ == "__main__":
    main()

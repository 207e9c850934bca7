"""Instructions the decision pipeline executes per message, in process, counted by callgrind.

`bench.instructions` counts a whole gateway per proxied call (~5 minutes, the process ~50
times slower under callgrind); this counts the pipeline alone, per message of the benchmark's
two calls: what the full policy set adds to a call, judged by a figure that comes out the
same run after run. One process per policy set runs under callgrind: it builds the
pipeline and warms it up on all four messages; then, for each message in turn, its counters
are zeroed, it decides that message a fixed number of times (parsed afresh from the stub's
bytes each time, as the proxy parses each answer) and the counters are dumped. Without
policies the same loop measures the parse, the check context and the empty pipeline, which
the gateway without policies pays too.

    .venv/bin/python -m bench.pipeline_instructions

Results go to bench/results/pipeline_instructions.json.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

import orjson

from bench.guardrail_cost import calls, context, guardrails
from cerberus.cache.memory import MemoryCache
from cerberus.guardrails import Direction, Outcome
from cerberus.proxy.pipeline import Pipeline

RESULTS = Path(__file__).parent / "results"
MESSAGES = ("echo_request", "echo_response", "lookup_request", "lookup_response")
WARMUP = 200


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500, help="decisions counted per message")
    parser.add_argument(
        "--serve",
        choices=("none", "full"),
        help="(what the counted process runs) decide the messages named on stdin",
    )
    return parser.parse_args()


def serve(policies: str) -> None:
    """Warm the pipeline up on every message, then for each `MESSAGE COUNT` line read from
    stdin decide that message COUNT times and answer `done`."""
    pipeline = Pipeline(guardrails() if policies == "full" else [])
    cache = MemoryCache()
    raw: dict[str, tuple[dict[str, Any], bytes, Direction]] = {}
    for tool, (request, response) in calls().items():
        raw[f"{tool}_request"] = (request, orjson.dumps(request), Direction.REQUEST)
        raw[f"{tool}_response"] = (request, orjson.dumps(response), Direction.RESPONSE)

    async def decide(name: str, times: int) -> Outcome:
        request, body, direction = raw[name]
        outcome = Outcome.ALLOW
        for _ in range(times):
            decision = await pipeline.decide(orjson.loads(body), context(direction, request, cache))
            outcome = decision.outcome
        return outcome

    loop = asyncio.new_event_loop()
    for name in MESSAGES:
        outcome = loop.run_until_complete(decide(name, WARMUP))
        # A pipeline that failed (and blocked) would be counted as a cheap one.
        redacts = policies == "full" and name == "lookup_response"
        expected = Outcome.MODIFY if redacts else Outcome.ALLOW
        if outcome is not expected:
            raise SystemExit(f"{name}: {outcome.value}, expected {expected.value}")
    # As the gateway's start-up does (cerberus/app.py): what was built so far is out of the
    # collector's generations, so a full collection does not walk it.
    gc.freeze()
    print("ready", flush=True)  # noqa: T201
    for line in sys.stdin:
        name, times = line.split()
        loop.run_until_complete(decide(name, int(times)))
        print("done", flush=True)  # noqa: T201
    loop.close()


def count_policies(policies: str, count: int, work: Path) -> dict[str, int]:
    """Instructions per decision of each message, in one process under callgrind."""
    # The parent's alone: bench.instructions imports the load generator.
    from bench.instructions import callgrind_control, callgrind_total

    out = work / f"{policies}.callgrind"
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable]
    argv += ["-m", "bench.pipeline_instructions", "--serve", policies]
    cwd = Path(__file__).parent.parent
    # A fixed hash seed: string hashes decide set and dict layouts, and so a few branches.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    child = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=cwd,
        env=env,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    found: dict[str, int] = {}
    try:
        _expect(child.stdout, "ready")
        for dump, message in enumerate(MESSAGES, start=1):
            callgrind_control("-z", child.pid)
            child.stdin.write(f"{message} {count}\n".encode())
            child.stdin.flush()
            _expect(child.stdout, "done")
            callgrind_control("-d", child.pid)
            found[message] = callgrind_total(Path(f"{out}.{dump}")) // count
        child.stdin.close()
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return found


def _expect(stream: IO[bytes], word: str) -> None:
    line = stream.readline().decode().strip()
    if line != word:
        raise RuntimeError(f"the counted process said {line!r}, not {word!r}")


def run(count: int) -> dict[str, Any]:
    from bench.instructions import require_callgrind

    require_callgrind()
    per_message: dict[str, dict[str, int]] = {message: {} for message in MESSAGES}
    with tempfile.TemporaryDirectory(prefix="cerberus-pipeline-") as tmp:
        for policies in ("none", "full"):
            for message, instructions in count_policies(policies, count, Path(tmp)).items():
                per_message[message][policies] = instructions
                print(f"{message}, {policies}: {instructions:,}")  # noqa: T201
    per_call = {
        policies: sum(per_message[m][policies] for m in MESSAGES) // 2
        for policies in ("none", "full")
    }
    return {
        "settings": {"count": count, "warmup": WARMUP},
        "instructions_per_message": per_message,
        # The load alternates echo and lookup: a call is half of the four messages' sum.
        "instructions_per_call": per_call,
    }


def main() -> None:
    args = parse_args()
    if args.serve is not None:
        serve(args.serve)
        return
    results = run(args.count)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pipeline_instructions.json").write_bytes(
        orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n"
    )


if __name__ == "__main__":
    main()

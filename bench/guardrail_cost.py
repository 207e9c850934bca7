"""What the full policy set costs per tool call, in process: each guardrail timed alone.

End-to-end CPU per request moves with whatever else the machine runs; this measures the
guardrail share directly: the request and the answer of each benchmark call (the stub's
exact bytes) through a Pipeline compiled from the full policy set, best of several batches
(the least disturbed), and then each guardrail's own check on the same messages. In the
pipeline the text guardrails share one walk, one scan and one copy per message (the text
pass); checked alone, each walks, scans and copies the message itself, so the per-guardrail
figures add up to more than the pipeline's. `pipeline_steps_us` splits the pipeline's own
time per message into its steps, in its order: each guardrail (a text guardrail's step holds
the text pass, scan or rescan that it is the first to need), then the copy of a redacted
message.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from bench.payloads import ECHO_TEXT, TOOLS
from bench.policies import full_policy_set
from bench.report import COPY_STEP
from bench.stub_upstream import answer
from cerberus.cache.memory import MemoryCache
from cerberus.guardrails import CheckContext, Direction, Guardrail
from cerberus.guardrails.rate_limit import RATE_LIMITS
from cerberus.guardrails.text_checks import TextPass
from cerberus.policies.compiled import PolicyRow, compile_guardrail
from cerberus.proxy.pipeline import Pipeline

BATCH = 200
BATCHES = 7


def calls() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """tool -> (the request, the upstream's answer), as the load generator sends them."""
    out = {}
    for tool, arguments in (
        ("echo", {"text": f"{ECHO_TEXT} #1"}),
        ("lookup", {"customer_id": "c2"}),
    ):
        request = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": tool, "arguments": arguments},
        }
        raw = answer(request)
        assert raw is not None
        out[tool] = (request, orjson.loads(raw))
    return out


# The tools' outputSchemas by name, as the gateway learns them from a tools/list answer.
OUTPUT_SCHEMAS = {tool["name"]: tool["outputSchema"] for tool in TOOLS}


def context(direction: Direction, request: dict[str, Any], cache: MemoryCache) -> CheckContext:
    """As the gateway builds it; for an answer with the tool's outputSchema, which the gateway
    knows once a client has listed the tools (the load generator lists them, as clients do)."""
    tool = request["params"]["name"]
    response = direction is Direction.RESPONSE
    return CheckContext(
        organisation_id="bench",
        workspace_id="bench",
        agent_id="bench",
        direction=direction,
        method="tools/call",
        tool_name=tool,
        request=request if response else None,
        cache=cache,
        output_schema=OUTPUT_SCHEMAS[tool] if response else None,
    )


def guardrails() -> list[Guardrail]:
    """The full policy set's guardrails, compiled as the gateway compiles them."""
    return [
        compile_guardrail(
            PolicyRow(f"p{i}", p["name"], p["guardrail_type"], p["action"], p["config"])
        )
        for i, p in enumerate(full_policy_set().policies)
    ]


async def best_ms(step: Callable[[], Awaitable[Any]]) -> float:
    """Milliseconds per step: the best of BATCHES batches of BATCH steps."""
    best = float("inf")
    for _ in range(BATCHES):
        started = time.perf_counter()
        for _ in range(BATCH):
            await step()
        best = min(best, (time.perf_counter() - started) / BATCH)
    return round(best * 1000, 4)


async def measure() -> dict[str, Any]:
    compiled = guardrails()
    pipeline = Pipeline(compiled)
    cache = MemoryCache()
    result: dict[str, Any] = {"guardrails": [g.type for g in compiled], "per_call_ms": {}}
    per_guardrail: dict[str, dict[str, float]] = {}
    for tool, (request, response) in calls().items():

        async def both(
            request: dict[str, Any] = request, response: dict[str, Any] = response
        ) -> None:
            await pipeline.decide(request, context(Direction.REQUEST, request, cache))
            await pipeline.decide(response, context(Direction.RESPONSE, request, cache))

        result["per_call_ms"][tool] = await best_ms(both)
        for direction, message in ((Direction.REQUEST, request), (Direction.RESPONSE, response)):
            for guardrail in pipeline.guardrails(direction):
                ctx = context(direction, request, cache)

                async def one(
                    g: Guardrail = guardrail, m: dict[str, Any] = message, c: CheckContext = ctx
                ) -> None:
                    await g.check_async(m, c)

                entry = per_guardrail.setdefault(guardrail.type, {})
                entry[f"{tool}_{direction.value}"] = await best_ms(one)
    result["per_guardrail_ms"] = per_guardrail
    result["pipeline_steps_us"] = {
        f"{tool}_{direction.value}": await pipeline_steps(pipeline, direction, request, message)
        for tool, (request, response) in calls().items()
        for direction, message in ((Direction.REQUEST, request), (Direction.RESPONSE, response))
    }
    result["one_pass_scan_ms"] = await one_pass()
    return result


async def pipeline_steps(
    pipeline: Pipeline, direction: Direction, request: dict[str, Any], message: dict[str, Any]
) -> dict[str, float]:
    """Microseconds per step of `Pipeline.decide` on one message, best of BATCHES batches.

    The steps as `decide` takes them (bench code may read its compiled steps): the text pass
    built on the first text guardrail, a guardrail whose detectors found nothing skipped,
    every other one reviewed or checked; the message copied at the end when redacted.
    """
    cache = MemoryCache()
    steps = pipeline._steps[direction]
    rate_limits = pipeline._rate_limits[direction]
    best: dict[str, float] = {}
    for _ in range(BATCHES):
        spent: Counter[str] = Counter()
        for _ in range(BATCH):
            ctx = context(direction, request, cache)
            if len(rate_limits) > 1:
                ctx.extras[RATE_LIMITS] = rate_limits
            text: TextPass | None = None
            for guardrail, reviewer, kinds, sync in steps:
                started = time.perf_counter_ns()
                if reviewer is None and sync:
                    guardrail.check(message, ctx)
                elif reviewer is None:
                    await guardrail.check_async(message, ctx)
                else:
                    if text is None:
                        text = TextPass(
                            message, pipeline._scanners[direction], pipeline._asks[direction]
                        )
                    if kinds is None or not text.finds_none_of(kinds):
                        reviewer.review(text, ctx)
                spent[guardrail.type] += time.perf_counter_ns() - started
            started = time.perf_counter_ns()
            if text is not None and text.changed:
                text.message()
            spent[COPY_STEP] += time.perf_counter_ns() - started
        for step, total in spent.items():
            best[step] = min(best.get(step, float("inf")), total / BATCH / 1000)
    return {step: round(us, 2) for step, us in best.items()}


async def one_pass() -> dict[str, float]:
    """The floor for the text guardrails: walk each message once and scan every text once
    with every detector in one RE2 set (what a fused pipeline would do; no redaction)."""
    from cerberus import mcp
    from cerberus.scanning import ALL_DETECTORS, scanner

    compiled = scanner(ALL_DETECTORS)
    out = {}
    for tool, (request, response) in calls().items():

        async def both(
            request: dict[str, Any] = request, response: dict[str, Any] = response
        ) -> None:
            for message in (request, response):
                for slot in mcp.texts(message):
                    compiled.scan(slot.data)

        out[tool] = await best_ms(both)
    return out


def run_guardrail_cost() -> dict[str, Any]:
    return asyncio.run(measure())


if __name__ == "__main__":
    print(orjson.dumps(run_guardrail_cost(), option=orjson.OPT_INDENT_2).decode())  # noqa: T201

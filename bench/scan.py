"""What guardrail scanning costs: PII + secrets + injection over tool results of growing size.

The guardrails run through the real Pipeline in the response direction, as the proxy runs
them, on a `tools/call` result. Realistic documents give MB/s; adversarial ones (digit runs,
dots, `@`, whitespace, deep nesting) at three sizes give the growth exponent of time against
size, which is 1.0 for linear scanning and 2.0 for quadratic backtracking.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import random
import statistics
import string
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from bench import procs
from cerberus.guardrails import CheckContext, Direction, Guardrail, guardrail_types
from cerberus.proxy.pipeline import Pipeline

SCAN_FAMILIES = ("pii", "secrets", "injection")
# Redact where possible (so redaction is timed too); injection only logs, so it never stops
# the pipeline before every scanner has read the whole message.
ACTION_PREFERENCE = ("redact", "log_only", "block")
REALISTIC_SIZES = (1_000, 100_000, 1_000_000)
ADVERSARIAL_SIZES = (16_000, 128_000, 1_024_000)
NESTING_DEPTHS = (100, 300, 900)
# A case slower than this at one size is not tried at the next (it has made its point).
GIVE_UP_SECONDS = 3.0

_PROSE = (
    "the quarterly report lists revenue by region and the changes in spending for each team "
    "customers asked about delivery times invoices were sent on monday and paid within terms "
    "support tickets fell by twelve percent after the new release of the search service"
)
WORDS = _PROSE.split()
PII_SENTENCE = "contact ops.lead@example.org or +1 212-555-0199, card 5500 0000 0000 0004"


def scanning_guardrails() -> tuple[list[Guardrail], list[str]]:
    chosen, names = [], []
    for kind in guardrail_types():
        if kind.family.value not in SCAN_FAMILIES:
            continue
        action = next((a for a in ACTION_PREFERENCE if a in kind.actions), kind.actions[0])
        config = {"direction": "both"} if "direction" in kind.model_fields else {}
        chosen.append(kind.model_validate({**config, "action": action}))
        names.append(f"{kind.type}:{action}")
    return chosen, names


def realistic_text(size: int, seed: int = 7) -> str:
    """English-like text with an email, a phone number and a card number every ~4 KB."""
    rng = random.Random(seed)
    parts: list[str] = []
    length = 0
    while length < size:
        if length and length % 4000 < 12:
            parts.append(
                "contact ops.lead@example.org or +1 212-555-0199, card 5500 0000 0000 0004"
            )
        parts.append(rng.choice(WORDS))
        length += len(parts[-1]) + 1
    return " ".join(parts)[:size]


ADVERSARIAL: dict[str, Callable[[int], str]] = {
    "digit_run": lambda n: "7" * n,
    "digits_spaced": lambda n: "4 " * (n // 2),
    "digits_dashed": lambda n: "555-" * (n // 4),
    "dots": lambda n: "." * n,
    "word_dots": lambda n: "a." * (n // 2),
    "ip_like": lambda n: "1." * (n // 2),
    "colons": lambda n: ":" * n,
    "card_groups": lambda n: "5555 " * (n // 5),
    "at_signs": lambda n: "@" * n,
    "at_words": lambda n: "a@" * (n // 2),
    "whitespace": lambda n: " \t\n" * (n // 3),
    "base64ish": lambda n: "A" * n,
    "key_prefixes": lambda n: "AKIA sk- ghp_ eyJ " * (n // 18),
    # Every pair of comments, with a word for the model between them, is a candidate the
    # comment rule's validator reads and rejects.
    "comment_pairs": lambda n: "<!-- a --> model " * (n // 17),
    # Varied text (minified code, ids, encoded data): no shape repeats, so RE2's DFA meets
    # new states all along. A rule that counts (`{0,200}`) multiplied them in the one set
    # of every detector: ~1 MB/s, and ~60 MiB of cache (see scanner_memory).
    "random_printable": lambda n: _random_text(string.printable, n),
    "random_identifiers": lambda n: _random_text(IDENTIFIER_CHARS, n),
    # An export of customer rows: an email, a phone, a card and an IP number in each line
    # of ~80 bytes, every one validated, redacted and rescanned for (docs/guardrails.md).
    "dense_pii_rows": lambda n: _pii_rows(n),
    # Text that is not ASCII is scanned as its folded copy (cerberus/scanning/fold.py): every
    # character here folds, into a run of grouped or bare digits. 3 bytes a pair, or each.
    "nbsp_digits": lambda n: "4\u00a0" * (n // 3),
    "fullwidth_digits": lambda n: "\uff14" * (n // 3),
}


IDENTIFIER_CHARS = string.ascii_letters + string.digits + " .-_/@"


def _random_text(alphabet: str, size: int, seed: int = 11) -> str:
    return "".join(random.Random(seed * size).choices(alphabet, k=size))


def _pii_rows(size: int) -> str:
    rows: list[str] = []
    length = 0
    while length < size:
        n = len(rows)
        rows.append(
            f"{n},user{n}@example.com,+1 415-555-{1000 + n % 9000},4111 1111 1111 1111,"
            f"10.0.{n % 256}.{n % 200}\n"
        )
        length += len(rows[-1])
    return "".join(rows)[:size]


def tool_result(text: str | None = None, structured: Any = None) -> dict[str, Any]:
    result: dict[str, Any] = {"content": [{"type": "text", "text": text or ""}], "isError": False}
    if structured is not None:
        result["structuredContent"] = structured
    return {"jsonrpc": "2.0", "id": 1, "result": result}


def nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"note": "call 555-0100 or write a@b.example"}
    for level in range(depth):
        node = {"level": level, "note": "1.2.3 x@y 4111 ", "child": node}
    return node


def context() -> CheckContext:
    return CheckContext(
        organisation_id="bench",
        workspace_id="bench",
        agent_id="bench",
        direction=Direction.RESPONSE,
        method="tools/call",
        tool_name="lookup",
        request={"method": "tools/call", "params": {"name": "lookup", "arguments": {}}},
    )


def time_scan(scan: Callable[[], str], budget: float = 0.6) -> dict[str, Any]:
    """Median seconds of repeated scans (at least 3, more while within `budget` seconds)."""
    times: list[float] = []
    outcome = ""
    spent = 0.0
    while len(times) < 3 or (spent < budget and len(times) < 50):
        started = time.perf_counter()
        outcome = scan()
        times.append(time.perf_counter() - started)
        spent += times[-1]
        if times[-1] > GIVE_UP_SECONDS or spent > 1.0:  # slow cases: fewer repeats
            break
    return {"seconds": statistics.median(times), "runs": len(times), "outcome": outcome}


def engine_scan(text: str) -> Callable[[], str]:
    """The scanning engine alone: every PII, secret and injection detector over one text."""
    from cerberus.scanning import scan_text

    return lambda: f"{len(scan_text(text))} hits"


def pipeline_scan(
    pipeline: Pipeline, message: dict[str, Any], loop: asyncio.AbstractEventLoop
) -> Callable[[], str]:
    """The guardrails as the proxy runs them: walk the message, scan, redact, decide."""

    def scan() -> str:
        return loop.run_until_complete(pipeline.decide(message, context())).outcome.value

    return scan


def growth_exponent(points: list[dict[str, Any]], key: str = "bytes") -> float | None:
    """log(time ratio) / log(size ratio) over the largest step of sizes (the last two points):
    1.0 is linear, 2.0 quadratic. The smallest size says little about growth: its fixed costs
    weigh most, and its outcome can differ from the larger sizes' (a 16 KB random text with
    no hit in it has nothing redacted or rescanned, where the larger ones do)."""
    if len(points) < 2 or points[-2]["seconds"] <= 0:
        return None
    first, last = points[-2], points[-1]
    return round(math.log(last["seconds"] / first["seconds"]) / math.log(last[key] / first[key]), 2)


# Fresh varied texts scanned by one union scanner in a new process: what RE2's DFA caches
# grow to when no text repeats (each of the two alphabets, 8 texts of 256 KB).
MEMORY_TEXTS = 8
MEMORY_TEXT_BYTES = 256_000


def scanner_memory() -> dict[str, Any]:
    """RSS growth of a fresh process that scans varied texts with every detector at once
    (the texts are built before the first reading), and the MB/s it scanned them at."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.scan"], capture_output=True, text=True, check=True
    )
    return dict(json.loads(done.stdout))


def _measure_scanner_memory() -> dict[str, Any]:
    from cerberus.scanning import RULES, scanner

    union = scanner(list(RULES))
    texts = [
        _random_text(alphabet, MEMORY_TEXT_BYTES, seed).encode()
        for seed in range(1, MEMORY_TEXTS + 1)
        for alphabet in (string.printable, IDENTIFIER_CHARS)
    ]
    union.scan(b"warm up")
    before = _rss_mib()
    started = time.perf_counter()
    for data in texts:
        union.scan(data)
    seconds = time.perf_counter() - started
    scanned = sum(len(data) for data in texts)
    return {
        "bytes": scanned,
        "mb_per_s": round(scanned / seconds / 1e6, 2),
        "rss_growth_mib": round(_rss_mib() - before, 1),
    }


def _rss_mib() -> float:
    return procs.status_kib(os.getpid(), "VmRSS") / 1024


def scan_cost(shapes: list[str] | None = None) -> dict[str, Any]:
    """`run_scan_cost` in a fresh process, as a gateway would scan: the harness's own heap
    (every scenario's samples) is not the gateway's, and the collector's full collections,
    which a megabyte of dense PII triggers many times, walked it on every one (on the
    twenty-first machine, 1 MB of `dense_pii_rows` took 479 ms in the harness, 257 alone)."""
    command = [sys.executable, "-m", "bench.scan", "--cost"]
    for shape in shapes or []:
        command += ["--shape", shape]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout))


def run_scan_cost(shapes: list[str] | None = None) -> dict[str, Any]:
    """Every scan cost, in this process: the engine, the scanner's memory, the pipeline.
    `shapes` keeps only these adversarial shapes (all when None)."""
    result: dict[str, Any] = {}
    try:
        import cerberus.scanning  # noqa: F401
    except ImportError as exc:
        result["engine"] = {"available": False, "reason": f"cerberus.scanning: {exc}"}
    else:
        result["engine"] = _cost(engine_scan, nesting=None, shapes=shapes)
        result["scanner_memory"] = scanner_memory()
    guardrails, names = scanning_guardrails()
    if not guardrails:
        reason = "no PII, secrets or injection guardrail registered"
        result["pipeline"] = {"available": False, "reason": reason}
        return result
    pipeline = Pipeline(guardrails)
    loop = asyncio.new_event_loop()
    try:
        result["pipeline"] = {
            "guardrails": names,
            **_cost(
                lambda text: pipeline_scan(pipeline, tool_result(text), loop),
                nesting=lambda depth: pipeline_scan(pipeline, tool_result("", nested(depth)), loop),
                shapes=shapes,
            ),
        }
    finally:
        loop.close()
    return result


def _cost(
    make: Callable[[str], Callable[[], str]],
    nesting: Callable[[int], Callable[[], str]] | None,
    shapes: list[str] | None,
) -> dict[str, Any]:
    realistic = []
    for size in REALISTIC_SIZES:
        timing = time_scan(make(realistic_text(size)), budget=0.4)
        realistic.append({"bytes": size, **timing, "mb_per_s": _mb_per_s(size, timing)})
    adversarial: dict[str, Any] = {}
    for name, build in ADVERSARIAL.items():
        if shapes is not None and name not in shapes:
            continue
        points = []
        for size in ADVERSARIAL_SIZES:
            text = build(size)
            timing = time_scan(make(text), budget=0.2)
            size = len(text.encode("utf-8"))
            points.append({"bytes": size, **timing, "mb_per_s": _mb_per_s(size, timing)})
            if timing["seconds"] > GIVE_UP_SECONDS:
                break
        adversarial[name] = {"points": points, "growth_exponent": growth_exponent(points)}
    if nesting is not None and (shapes is None or "deep_nesting" in shapes):
        depth_points = [
            {"depth": depth, **time_scan(nesting(depth), budget=0.3)} for depth in NESTING_DEPTHS
        ]
        adversarial["deep_nesting"] = {
            "points": depth_points,
            "growth_exponent": growth_exponent(depth_points, key="depth"),
        }
    return {"available": True, "realistic": realistic, "adversarial": adversarial}


def _mb_per_s(size: int, timing: dict[str, Any]) -> float:
    return round(size / max(timing["seconds"], 1e-9) / 1e6, 2)


def _main() -> None:
    parser = argparse.ArgumentParser(description="Scan costs, in this fresh process.")
    parser.add_argument("--cost", action="store_true", help="every scan cost (else memory)")
    parser.add_argument("--shape", action="append", help="only this adversarial shape")
    args = parser.parse_args()
    if not args.cost:
        print(json.dumps(_measure_scanner_memory()))  # noqa: T201
        return
    # As the gateway's start-up does (app.py): what the imports built is out of the
    # collector's generations, so a full collection walks what the scans allocate.
    gc.freeze()
    result = run_scan_cost(args.shape)
    result["frozen_objects"] = gc.get_freeze_count()
    result["pid"] = os.getpid()
    print(json.dumps(result))  # noqa: T201


if __name__ == "__main__":
    _main()

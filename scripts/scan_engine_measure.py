# ruff: noqa: T201
"""Measures the candidate scanning engines on this machine; docs/guardrails.md quotes its output.

Usage: `.venv/bin/python scripts/scan_engine_measure.py` (add `--hyperscan-path DIR` to include
hyperscan installed with `pip install --target DIR hyperscan`).
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
import time
from collections.abc import Callable
from functools import partial

import re2

from cerberus.scanning import ALL_DETECTORS, RULES, scanner

EMAIL = r"[A-Za-z0-9._%+\-]+@(?:[A-Za-z0-9\-]+\.)+[A-Za-z]{2,24}\b"
PROSE = (
    "The quarterly report is attached; revenue grew 12% to $4,312,900. Contact "
    "jane.roe@example.org or call (415) 555-0132. Build 2024.11.27.1 shipped to 10.20.30.40 "
    "on 2026-11-27T08:12:18Z.\n"
)


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def adversarial(size: int) -> str:
    return ("1.-" * (size // 3 + 1))[:size]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hyperscan-path")
    args = parser.parse_args()
    python_email = re.compile(EMAIL)
    re2_email = re2.compile(EMAIL)
    print("email pattern on digits/dots/dashes without '@' (seconds)")
    for size in (4_000, 8_000, 16_000):
        text = adversarial(size)
        print(f"  re  {size:>9} B  {timed(partial(python_email.findall, text)):.3f}")
    for size in (128_000, 1_000_000, 4_000_000):
        data = adversarial(size).encode()
        print(f"  re2 {size:>9} B  {timed(partial(re2_email.findall, data)):.3f}")

    everything = scanner(ALL_DETECTORS)
    prose = (PROSE * (4_000_000 // len(PROSE))).encode()
    mb = len(prose) / 1e6
    print(
        f"all detectors ({sum(len(r) for r in RULES.values())} rules) on {mb:.1f} MB prose with PII"
    )
    rate = mb / timed(lambda: everything.scan(prose))
    print(f"  re2 Set prefilter + per-rule search: {rate:.1f} MB/s")
    clean = (("All systems nominal; nothing to report here today. " * 80 + "\n") * 1000).encode()
    cmb = len(clean) / 1e6
    print(
        f"  same on {cmb:.1f} MB clean prose (Set pass only): "
        f"{cmb / timed(lambda: everything.scan(clean)):.1f} MB/s"
    )
    regexps = [re2.compile(rule.pattern) for rules in RULES.values() for rule in rules]
    per_rule = timed(lambda: [list(r.finditer(clean)) for r in regexps])
    print(f"  clean prose, every rule without the Set: {cmb / per_rule:.1f} MB/s")

    short = "Contact jane.roe@example.org today"
    python_all = [re.compile(rule.pattern.replace("\\x{", "\\u{")) for rule in RULES["email"]]
    loops = 20_000
    re_short = timed(lambda: [[p.findall(short) for p in python_all] for _ in range(loops)])
    re2_short = timed(lambda: [re2_email.findall(short) for _ in range(loops)])
    set_short = timed(lambda: [everything.scan_text(short) for _ in range(loops)])
    per_call = [seconds / loops * 1e6 for seconds in (re_short, re2_short, set_short)]
    print(
        f"short text ({len(short)} B), microseconds per call: re email {per_call[0]:.1f}, "
        f"re2 email {per_call[1]:.1f}, all detectors via Set {per_call[2]:.1f}"
    )

    big = prose[:2_000_000]
    one = timed(lambda: everything.scan(big))
    threads = [threading.Thread(target=everything.scan, args=(big,)) for _ in range(2)]

    def both() -> None:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    print(
        f"GIL: one 2 MB scan {one:.3f}s, two concurrently {timed(both):.3f}s "
        f"(about {one:.3f}s means the engine runs outside the GIL)"
    )
    ticks = 0
    stop = threading.Event()

    def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    tick_thread = threading.Thread(target=ticker)
    tick_thread.start()
    elapsed = timed(lambda: re2_email.findall(adversarial(4_000_000).encode()))
    stop.set()
    tick_thread.join()
    print(f"event-loop proxy: a 1 ms ticker ran {ticks} times during a {elapsed:.2f}s re2 call")

    if args.hyperscan_path:
        sys.path.insert(0, args.hyperscan_path)
        import hyperscan  # type: ignore[import-not-found]

        patterns = [rule.pattern.encode() for rules in RULES.values() for rule in rules]
        database = hyperscan.Database()
        flags = [hyperscan.HS_FLAG_PREFILTER | hyperscan.HS_FLAG_UTF8] * len(patterns)
        database.compile(
            expressions=patterns,
            ids=list(range(len(patterns))),
            elements=len(patterns),
            flags=flags,
        )
        hits: list[int] = []

        def on_match(pattern_id: int, start: int, end: int, flags: int, context: object) -> None:
            hits.append(pattern_id)

        print(
            f"  hyperscan prefilter pass, prose with PII: "
            f"{mb / timed(lambda: database.scan(prose, match_event_handler=on_match)):.1f} MB/s "
            f"({len(hits)} callbacks to then confirm with re2)"
        )
        hits.clear()
        print(
            f"  hyperscan prefilter pass, clean prose: "
            f"{cmb / timed(lambda: database.scan(clean, match_event_handler=on_match)):.1f} MB/s"
        )


if __name__ == "__main__":
    main()

"""Text scanning for guardrails: PII, secret and prompt-injection detectors on a linear-time engine.

`scanner(names)` returns the compiled Scanner for a set of detectors, built once per process
and shared by every guardrail object that asks for the same set. `scan_text` runs all
detectors over one text; the benchmark calls it to measure throughput.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from cerberus.scanning import injection, pii, secrets
from cerberus.scanning.engine import Hit, Rule, Scanner, replace_spans

RULES: dict[str, tuple[Rule, ...]] = {**pii.RULES, **secrets.RULES, **injection.RULES}
PII_DETECTORS = tuple(pii.RULES)
ALL_DETECTORS = tuple(RULES)

__all__ = [
    "ALL_DETECTORS",
    "PII_DETECTORS",
    "RULES",
    "Hit",
    "Rule",
    "Scanner",
    "replace_spans",
    "scan_text",
    "scanner",
]


def scanner(names: Iterable[str]) -> Scanner:
    """The compiled scanner for these detector groups (cached: compiled once per process)."""
    return _compiled(tuple(sorted(set(names))))


@cache
def _compiled(names: tuple[str, ...]) -> Scanner:
    unknown = [name for name in names if name not in RULES]
    if unknown:
        raise KeyError(f"unknown detectors: {', '.join(unknown)}")
    return Scanner([rule for name in names for rule in RULES[name]])


def scan_text(text: str | bytes) -> list[Hit]:
    """All PII, secret and injection hits in one text (byte offsets into its UTF-8 form)."""
    compiled = scanner(ALL_DETECTORS)
    return compiled.scan(text) if isinstance(text, bytes) else compiled.scan_text(text)

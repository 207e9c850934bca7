# ruff: noqa: T201
"""Reports precision and recall of each PII and secret detector on the labelled corpus.

Usage: `.venv/bin/python scripts/detection_quality.py [corpus.jsonl]`. A sample counts as a
detection for a type when that type's guardrail would find anything in it; precision is over
all samples (every other type's positives are that type's negatives, plus the hard negatives).
The floors are enforced by tests/guardrails/test_detection_quality.py and documented in
docs/guardrails.md.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from cerberus.scanning import scanner

CORPUS = (
    Path(__file__).resolve().parent.parent / "tests" / "guardrails" / "corpus" / "samples.jsonl"
)

# Guardrail type -> the detector group it runs.
TYPES = {
    "pii_ssn": "ssn",
    "pii_credit_card": "credit_card",
    "pii_email": "email",
    "pii_phone": "phone",
    "pii_ip_address": "ip_address",
    "secrets": "secrets",
}
RECALL_FLOOR = 0.98
PRECISION_FLOOR = 0.95


@dataclass
class Score:
    true_positive: int = 0
    false_positive: int = 0
    false_negative: int = 0

    @property
    def precision(self) -> float:
        found = self.true_positive + self.false_positive
        return self.true_positive / found if found else 1.0

    @property
    def recall(self) -> float:
        expected = self.true_positive + self.false_negative
        return self.true_positive / expected if expected else 1.0


def load(path: Path = CORPUS) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def measure(samples: list[dict[str, object]]) -> tuple[dict[str, Score], dict[str, list[str]]]:
    """Scores per type, and the misclassified texts per type (for reading, never for tuning)."""
    scores = {name: Score() for name in TYPES}
    mistakes: dict[str, list[str]] = {name: [] for name in TYPES}
    for sample in samples:
        text = str(sample["text"])
        labels = set(sample["labels"])  # type: ignore[call-overload]
        for name, group in TYPES.items():
            found = bool(scanner([group]).scan_text(text))
            expected = name in labels
            if found and expected:
                scores[name].true_positive += 1
            elif found:
                scores[name].false_positive += 1
                mistakes[name].append(f"FP {text!r}")
            elif expected:
                scores[name].false_negative += 1
                mistakes[name].append(f"FN {text!r}")
    return scores, mistakes


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else CORPUS
    samples = load(path)
    positives = sum(1 for sample in samples if sample["labels"])
    print(f"{len(samples)} samples: {positives} positive, {len(samples) - positives} negative")
    scores, mistakes = measure(samples)
    print(f"{'type':<18}{'precision':>10}{'recall':>8}{'TP':>6}{'FP':>5}{'FN':>5}")
    failing = False
    for name, score in scores.items():
        print(
            f"{name:<18}{score.precision:>10.3f}{score.recall:>8.3f}"
            f"{score.true_positive:>6}{score.false_positive:>5}{score.false_negative:>5}"
        )
        failing |= score.precision < PRECISION_FLOOR or score.recall < RECALL_FLOOR
    for name, items in mistakes.items():
        for item in items:
            print(f"  {name}: {item}")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())

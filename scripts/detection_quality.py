# ruff: noqa: T201
"""Reports precision and recall of each PII and secret detector on the labelled corpora.

Usage: `.venv/bin/python scripts/detection_quality.py [corpus.jsonl ...]` (default: every
corpus in tests/guardrails/corpus). A sample counts as a detection for a type when that
type's guardrail would find anything in it; precision is over all samples (every other
type's positives are that type's negatives, plus the hard negatives).
The floors are enforced by tests/guardrails/test_detection_quality.py and documented in
docs/guardrails.md.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from cerberus.scanning import scanner

CORPUS_DIR = Path(__file__).resolve().parent.parent / "tests" / "guardrails" / "corpus"
# samples: written by hand and generator before the detectors; faker_samples: Faker values,
# measured and its misses fixed; faker_holdout: Faker, another seed, measured untuned.
CORPORA = ("samples.jsonl", "faker_samples.jsonl", "faker_holdout.jsonl")

# Guardrail type -> the detector group it runs.
TYPES = {
    "pii_ssn": "ssn",
    "pii_credit_card": "credit_card",
    "pii_email": "email",
    "pii_phone": "phone",
    "pii_ip_address": "ip_address",
    "secrets": "secrets",
}
# The suite fails below these on any corpus (docs/guardrails.md: why 0.95, and what we measure).
RECALL_FLOOR = 0.95
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


def load(path: Path) -> list[dict[str, object]]:
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


def report(path: Path) -> bool:
    """Prints one corpus's table and mistakes; True if every type clears the floors."""
    samples = load(path)
    positives = sum(1 for sample in samples if sample["labels"])
    print(
        f"{path.name}: {len(samples)} samples, {positives} positive, "
        f"{len(samples) - positives} negative"
    )
    scores, mistakes = measure(samples)
    print(f"{'type':<18}{'precision':>10}{'recall':>8}{'TP':>6}{'FP':>5}{'FN':>5}")
    passing = True
    for name, score in scores.items():
        print(
            f"{name:<18}{score.precision:>10.3f}{score.recall:>8.3f}"
            f"{score.true_positive:>6}{score.false_positive:>5}{score.false_negative:>5}"
        )
        passing &= score.precision >= PRECISION_FLOOR and score.recall >= RECALL_FLOOR
    for name, items in mistakes.items():
        for item in items:
            print(f"  {name}: {item}")
    print()
    return passing


def main() -> int:
    paths = [Path(arg) for arg in sys.argv[1:]] or [CORPUS_DIR / name for name in CORPORA]
    results = [report(path) for path in paths]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Detection quality on the labelled corpus stays above the documented floors."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def quality_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "detection_quality", ROOT / "scripts" / "detection_quality.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


QUALITY = quality_script()
SAMPLES = QUALITY.load()
SCORES, MISTAKES = QUALITY.measure(SAMPLES)


def test_corpus_has_enough_positives_and_negatives() -> None:
    positives = [sample for sample in SAMPLES if sample["labels"]]
    negatives = [sample for sample in SAMPLES if not sample["labels"]]
    assert len(positives) >= 300
    assert len(negatives) >= 300
    for type_ in QUALITY.TYPES:
        assert sum(type_ in sample["labels"] for sample in positives) >= 50, type_


@pytest.mark.parametrize(
    "marker",
    ["Order #", "request_id: ", "ts=", "version ", "ISBN", "commit ", "SKU ", "P/N "],
)
def test_corpus_holds_hard_negatives(marker: str) -> None:
    assert any(marker in str(s["text"]) and not s["labels"] for s in SAMPLES)


@pytest.mark.parametrize("type_", list(QUALITY.TYPES))
def test_precision_and_recall_stay_above_the_floor(type_: str) -> None:
    score = SCORES[type_]
    assert score.recall >= QUALITY.RECALL_FLOOR, MISTAKES[type_]
    assert score.precision >= QUALITY.PRECISION_FLOOR, MISTAKES[type_]

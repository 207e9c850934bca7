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
CORPORA = {name: QUALITY.load(QUALITY.CORPUS_DIR / name) for name in QUALITY.CORPORA}
SCORES = {name: QUALITY.measure(samples) for name, samples in CORPORA.items()}
SAMPLES = CORPORA["samples.jsonl"]


@pytest.mark.parametrize("corpus", list(CORPORA))
def test_corpus_has_enough_positives_and_negatives(corpus: str) -> None:
    positives = [sample for sample in CORPORA[corpus] if sample["labels"]]
    negatives = [sample for sample in CORPORA[corpus] if not sample["labels"]]
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


@pytest.mark.parametrize("corpus", list(CORPORA))
@pytest.mark.parametrize("type_", list(QUALITY.TYPES))
def test_precision_and_recall_stay_above_the_floor(corpus: str, type_: str) -> None:
    scores, mistakes = SCORES[corpus]
    assert scores[type_].recall >= QUALITY.RECALL_FLOOR, mistakes[type_]
    assert scores[type_].precision >= QUALITY.PRECISION_FLOOR, mistakes[type_]

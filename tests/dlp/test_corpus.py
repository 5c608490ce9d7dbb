"""The measured false-positive and miss rates: precision and recall per class on the corpus."""

from __future__ import annotations

import pytest

from gatewayd.dlp import Scanner

from .corpus import Sample, build_corpus, score

FLOOR = 0.95  # the same floor tools/bench/dlp.py holds every class to


@pytest.fixture(scope="module")
def corpus() -> list[Sample]:
    return build_corpus()


def test_corpus_is_deterministic() -> None:
    assert build_corpus(per_class=3, negatives_count=20) == build_corpus(
        per_class=3, negatives_count=20)


def test_corpus_covers_every_class(scanner: Scanner, corpus: list[Sample]) -> None:
    labelled = {label.dlp_class for sample in corpus for label in sample.labels}
    assert labelled == set(scanner.classes)
    assert sum(1 for s in corpus if not s.labels) >= 300  # hard negatives


def test_precision_and_recall_per_class(scanner: Scanner, corpus: list[Sample]) -> None:
    report = score(scanner, corpus)
    low = {cls: (round(s.precision, 3), round(s.recall, 3))
           for cls, s in report.scores.items() if s.precision < FLOOR or s.recall < FLOOR}
    assert not low, (low, report.false_positives[:10], report.missed[:10])
    for cls, s in report.scores.items():
        assert s.labels >= 30, cls

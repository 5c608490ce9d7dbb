"""Pattern hits: the C twin (over libhs) reports exactly the hits ``hits.py`` reports (over
the ``hyperscan`` package), windows and bounds included, and refuses what it refuses."""

from __future__ import annotations

import random
from types import ModuleType

import pytest

from gatewayd.dlp import hits
from tools.bench.dlp import same_patterns

from .corpus import build_corpus
from .twins import assert_is_the_c_twin, reference

PY = reference("hits")


def shipped_patterns() -> tuple[list[bytes], list[int]]:
    """Every shipped rule pattern and cue (the benchmark's list), as one database, with the
    start-of-match reporting the engine asks for (the engine splits them in two; one larger
    database is the harder test)."""
    patterns, caseless = same_patterns()
    return patterns, [flags | PY.SOM_LEFTMOST for flags in caseless]


@pytest.fixture(scope="module")
def twins() -> tuple[object, object]:
    expressions, flags = shipped_patterns()
    return hits.Database(expressions, flags), PY.Database(expressions, flags)


def test_the_c_twin_is_what_runs() -> None:
    assert_is_the_c_twin(hits)
    assert (hits.CASELESS, hits.SOM_LEFTMOST) == (PY.CASELESS, PY.SOM_LEFTMOST)


def test_the_twins_agree_on_the_corpus(twins: tuple[object, object]) -> None:
    native, python = twins
    rng = random.Random(11)
    bodies = [s.body for s in build_corpus(per_class=4, negatives_count=60)]
    assert sum(len(python.scan(b, 0, len(b), 10_000)[0]) for b in bodies) > 500  # type: ignore[attr-defined]
    for body in bodies:
        size = len(body)
        lo = rng.randint(0, size)
        hi = rng.randint(lo, size)
        for args in ((0, size, 10_000), (lo, hi, 10_000), (0, size, 3), (0, size, 0),
                     (lo, hi, 1)):
            want = python.scan(body, *args)  # type: ignore[attr-defined]
            assert native.scan(body, *args) == want, (body[:60], args)  # type: ignore[attr-defined]


def test_a_scan_that_reaches_its_limit_says_so(twins: tuple[object, object]) -> None:
    native, python = twins
    body = b"mail a@b.co and c@d.co please"
    whole = python.scan(body, 0, len(body), 100)  # type: ignore[attr-defined]
    assert whole[1] and len(whole[0]) >= 2
    for database in (native, python):
        assert database.scan(body, 0, len(body), 1) == (whole[0][:1], False)  # type: ignore[attr-defined]
        assert database.scan(body, 0, len(body), 0) == ([], False)  # type: ignore[attr-defined]
        exact = database.scan(body, 0, len(body), len(whole[0]))  # type: ignore[attr-defined]
        assert exact == (whole[0], False)  # the last hit stops the scan: it cannot know


@pytest.mark.parametrize("module", [hits, PY], ids=["c", "python"])
@pytest.mark.parametrize("pattern", [b"a(", b"(a)\\1", b"(?<=a)b"])
def test_a_refused_pattern_is_a_pattern_error(module: ModuleType, pattern: bytes) -> None:
    with pytest.raises(module.PatternError) as refused:
        module.Database([b"fine", pattern], [0, module.SOM_LEFTMOST])
    assert str(refused.value)


def test_the_c_twin_refuses_a_nul_byte_in_a_pattern() -> None:
    with pytest.raises(hits.PatternError, match="NUL"):
        hits.Database([b"a\x00b"], [0])

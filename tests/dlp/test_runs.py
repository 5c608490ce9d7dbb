"""Encoded runs: the C twin finds exactly the runs ``runs.py`` finds, bounds and all."""

from __future__ import annotations

import base64
import random
from collections.abc import Callable

import pytest

from gatewayd.dlp import runs

from .twins import assert_is_the_c_twin, reference

PY = reference("runs")
ALPHABET = b"aA0+/=_-%fF2 x\x00.~:3\xc3\xa9"


def awkward(rng: random.Random) -> bytes:
    """A buffer of pieces that sit on the edges of what a run is."""
    if rng.random() < 0.3:
        return bytes(rng.choice(ALPHABET) for _ in range(rng.choice([0, 1, 15, 16, 17, 60])))
    pieces = []
    for _ in range(rng.randint(0, 8)):
        pick = rng.random()
        if pick < 0.25:
            pieces.append(base64.b64encode(rng.randbytes(rng.randint(5, 40))))
        elif pick < 0.35:
            pieces.append(base64.urlsafe_b64encode(rng.randbytes(rng.randint(5, 40))))
        elif pick < 0.5:
            pieces.append(rng.randbytes(rng.randint(5, 30)).hex().encode())
        elif pick < 0.6:
            pieces.append(b"text that is ASCII".hex().encode())
        elif pick < 0.7:
            pieces.append(rng.choice([b"a%41b%2Fc%zz", b"%4", b"%%41", b"q=a%20b&x=%2"]))
        elif pick < 0.8:
            pieces.append(b"some_lower_case_identifier-words")
        else:
            pieces.append(bytes(rng.choice(ALPHABET) for _ in range(rng.randint(0, 30))))
        pieces.append(rng.choice([b" ", b"\x00", b"=", b"==", b"===", b"", b"\n", b"%"]))
    return b"".join(pieces)


def test_the_c_twin_is_what_runs() -> None:
    assert_is_the_c_twin(runs)


def test_the_twins_agree_on_awkward_buffers() -> None:
    rng = random.Random(20261124)
    for _ in range(20000):
        buf = awkward(rng)
        limit = rng.choice([0, 1, 2, 3, 1000])
        covered: Callable[[int, int], bool] | None = None
        if rng.random() < 0.3:
            edge = rng.randint(0, 60)
            covered = lambda start, end, edge=edge: start < edge  # noqa: E731
        want = PY.encoded_runs(buf, limit=limit, covered=covered)
        assert runs.encoded_runs(buf, limit=limit, covered=covered) == want, (buf, limit)


def test_the_twins_agree_on_the_benchmark_text() -> None:
    from tools.bench.dlp import corpus_text  # noqa: PLC0415 - needs faker

    text = corpus_text(65536).encode()
    for limit in (4, 1024):
        assert runs.encoded_runs(text, limit=limit) == PY.encoded_runs(text, limit=limit)


@pytest.mark.parametrize("module", [runs, PY], ids=["c", "python"])
def test_limit_is_required_and_covered_errors_propagate(module: object) -> None:
    encoded_runs = module.encoded_runs  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        encoded_runs(b"x")

    def covered(start: int, end: int) -> bool:
        raise LookupError("from covered")

    with pytest.raises(LookupError, match="from covered"):
        encoded_runs(b"QUJDREVGR0hJSktMTU5PUA==", limit=4, covered=covered)

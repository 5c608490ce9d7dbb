"""Entropy: the C twin returns the same float as ``entropy.py``, bit for bit."""

from __future__ import annotations

import math
import random

from gatewayd.dlp import entropy

from .twins import assert_is_the_c_twin, reference

PY = reference("entropy")


def test_the_c_twin_is_what_runs() -> None:
    assert_is_the_c_twin(entropy)


def test_the_twins_agree_bit_for_bit() -> None:
    rng = random.Random(4)
    alphabets = [b"ab", b"0123456789abcdef", bytes(range(256)),
                 b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"]
    lengths = [0, 1, 2, 3, 16, 20, 40, 64, 100, 4095, 4096, 4097, 10_000]
    for _ in range(3000):
        alphabet = rng.choice(alphabets)
        n = rng.choice(lengths) if rng.random() < 0.3 else rng.randint(0, 200)
        data = bytes(rng.choice(alphabet) for _ in range(n))
        want = PY.shannon(data)
        got = entropy.shannon(data)
        assert got.hex() == want.hex(), (data[:40], n)


def test_known_values() -> None:
    for shannon in (entropy.shannon, PY.shannon):
        assert shannon(b"") == 0.0
        assert shannon(b"aaaa") == 0.0
        assert shannon(b"abab") == 1.0
        assert shannon(bytes(range(256))) == 8.0
        assert shannon(b"a" * (PY.MAX_LENGTH + 1)) == 0.0
        assert math.isclose(shannon(b"abc"), math.log2(3))

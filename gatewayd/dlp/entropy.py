"""Shannon entropy of a byte string, in bits per character: how random a token looks.

Validators call ``shannon`` on most secret candidates (an AWS secret, a generic key's
value), so it has a C twin, ``entropy.c``, that ``tools/native.py`` builds next to the
compiled modules (``gatewayd/compiled.py``) and that is used in place of this module only
while it was built from the sources as they are. The two return the same float for every
input, bit for bit: the same terms (``k log2 k`` per character count, by the C library's
``log2``), added in the same order (by byte value), and the same last step
(``tests/dlp/test_entropy.py`` holds them to it). This module is the reference.
"""

from __future__ import annotations

import math
from typing import Final

MAX_LENGTH: Final = 4096  # longer strings are not tokens: 0.0

_K_LOG_K: Final = (0.0, *(k * math.log2(k) for k in range(1, MAX_LENGTH + 1)))


def shannon(data: bytes) -> float:
    """Bits per character: log2(n) - sum(k log2 k) / n over the character counts k, the
    counts taken in byte order; 0.0 for an empty string or one over ``MAX_LENGTH``.

    The counts are the runs of the sorted bytes: compiled, a loop over a sorted list of
    small ints costs half what a dictionary of counts does."""
    n = len(data)
    if not n or n > MAX_LENGTH:
        return 0.0
    total = 0.0
    run = 1
    ordered = sorted(data)
    previous = ordered[0]
    for c in ordered[1:]:
        if c == previous:
            run += 1
        else:
            total += _K_LOG_K[run]
            run = 1
            previous = c
    total += _K_LOG_K[run]
    return math.log2(n) - total / n

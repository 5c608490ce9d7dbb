"""One analyzer per test module: loading the tokenizer takes a fraction of a second."""

from __future__ import annotations

import pytest

from gatewayd.ai import Analyzer


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    ready = Analyzer()
    ready.preload()
    return ready

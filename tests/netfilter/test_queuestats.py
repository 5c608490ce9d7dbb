from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayd.errors import ParseError
from gatewayd.netfilter.queuestats import QueueStats, parse_queue_stats, read_queue_stats

# As the kernel prints it: "%5u %6u %5u %1u %5u %5u %5u %8u %2d\n".
SAMPLE = """\
    0 3141592    12 2 65531     3     1     9876  1
    1      0     0 2 65531     0     0        0  1
"""

counters = st.integers(min_value=0, max_value=2**32 - 1)


def test_parse_sample() -> None:
    stats = parse_queue_stats(SAMPLE)
    assert stats == {
        0: QueueStats(0, 3141592, 12, 2, 65531, 3, 1, 9876),
        1: QueueStats(1, 0, 0, 2, 65531, 0, 0, 0),
    }
    assert stats[0].drops == 4


def test_empty_file_means_no_queues() -> None:
    assert parse_queue_stats("") == {}
    assert parse_queue_stats("\n\n") == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0 1 2 3 4 5 6 7\n", "expected 9 fields"),
        ("0 1 2 3 4 5 6 7 1 9\n", "expected 9 fields"),
        ("0 1 2 3 x 5 6 7 1\n", "not integers"),
        ("0 1 -2 3 4 5 6 7 1\n", "negative"),
    ],
)
def test_malformed_lines_raise_parse_error(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_queue_stats(text)


@given(st.lists(st.tuples(*[counters] * 8), max_size=5, unique_by=lambda t: t[0]))
def test_printed_lines_parse_back(rows: list[tuple[int, ...]]) -> None:
    text = "".join(
        "%5u %6u %5u %1u %5u %5u %5u %8u %2d\n" % (*row, 1)  # noqa: UP031 - the kernel's format
        for row in rows
    )
    assert parse_queue_stats(text) == {row[0]: QueueStats(*row) for row in rows}


def test_read_missing_file_is_no_queues(tmp_path: Path) -> None:
    assert read_queue_stats(tmp_path / "absent") == {}


def test_read_file(tmp_path: Path) -> None:
    path = tmp_path / "nfnetlink_queue"
    path.write_text(SAMPLE, encoding="ascii")
    assert set(read_queue_stats(path)) == {0, 1}

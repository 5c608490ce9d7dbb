from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gatewayd.verdict.streams import SEQ_MOD, Feed, Streams

K = ("flow",)


def streams(max_bytes: int = 100) -> Streams:
    return Streams(max_flows=4, max_bytes=max_bytes, idle_s=10.0)


def test_in_order_segments_accumulate() -> None:
    s = streams()
    s.start(K, 1000, 0.0)
    assert s.feed(K, 1001, b"ab", 0.0) == b"ab"
    assert s.feed(K, 1003, b"cd", 0.0) == b"abcd"


def test_retransmissions_add_only_new_bytes() -> None:
    s = streams()
    s.start(K, 0, 0.0)
    s.feed(K, 1, b"abc", 0.0)
    assert s.feed(K, 1, b"abc", 0.0) == b"abc"
    assert s.feed(K, 2, b"bcde", 0.0) == b"abcde"


def test_a_gap_is_reported_and_nothing_kept() -> None:
    s = streams()
    s.start(K, 0, 0.0)
    assert s.feed(K, 5, b"xyz", 0.0) is Feed.GAP
    assert s.feed(K, 1, b"a", 0.0) == b"a"


def test_sequence_numbers_wrap() -> None:
    s = streams()
    s.start(K, SEQ_MOD - 2, 0.0)
    assert s.feed(K, SEQ_MOD - 1, b"a", 0.0) == b"a"
    assert s.feed(K, 0, b"b", 0.0) == b"ab"


def test_bounds_unknown_idle_and_too_long() -> None:
    s = streams(max_bytes=4)
    assert s.feed(K, 1, b"a", 0.0) is Feed.UNKNOWN
    s.start(K, 0, 0.0)
    assert s.feed(K, 1, b"abcde", 0.0) is Feed.TOO_LONG
    assert K not in s
    s.start(K, 0, 0.0)
    assert s.feed(K, 1, b"a", 11.0) is Feed.UNKNOWN
    for i in range(6):
        s.start(i, 0, 0.0)
    assert len(s) == 4


def test_consume_keeps_the_rest() -> None:
    s = streams()
    s.start(K, 0, 0.0)
    s.feed(K, 1, b"abcdef", 0.0)
    s.consume(K, 4)
    assert s.feed(K, 7, b"g", 0.0) == b"efg"


@given(st.binary(min_size=1, max_size=60), st.lists(st.integers(1, 8), min_size=1),
       st.integers(0, SEQ_MOD - 1))
def test_any_in_order_cut_gives_the_whole(data: bytes, sizes: list[int], isn: int) -> None:
    s = streams()
    s.start(K, isn, 0.0)
    offset, got = 0, b""
    for size in sizes * (len(data) // len(sizes) + 1):
        if offset >= len(data):
            break
        piece = data[offset:offset + size]
        fed = s.feed(K, (isn + 1 + offset) % SEQ_MOD, piece, 0.0)
        assert isinstance(fed, bytes)
        got = fed
        offset += len(piece)
    assert got == data


def test_expire_returns_the_keys_that_went() -> None:
    s = streams()
    s.start("old", 0, 0.0)
    s.start("fresh", 0, 9.0)
    assert s.expire(15.0) == ["old"]
    assert "fresh" in s

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayd.config import Config
from gatewayd.netfilter.marks import FULL_MASK, MAX_SHIFT, Marks, State

SHIFTS = range(MAX_SHIFT + 1)
marks32 = st.integers(min_value=0, max_value=FULL_MASK)
shifts = st.integers(min_value=0, max_value=MAX_SHIFT)
states = st.sampled_from(list(State))


def test_default_layout_is_the_documented_one() -> None:
    m = Marks.from_config(Config())
    assert m.shift == 20
    assert m.state_mask == 0x00F0_0000
    assert [m.value(s) for s in State] == [0, 0x10_0000, 0x20_0000, 0x30_0000, 0x40_0000]
    assert (m.stamp_bit, m.queued_bit, m.reset_bit) == (0x0100_0000, 0x0200_0000, 0x0400_0000)
    assert m.ours == 0x07F0_0000
    assert m.others == 0xF80F_FFFF


@pytest.mark.parametrize("shift", SHIFTS)
def test_every_shift_has_seven_disjoint_contiguous_bits(shift: int) -> None:
    m = Marks(shift)
    parts = [m.state_mask, m.stamp_bit, m.queued_bit, m.reset_bit]
    for i, a in enumerate(parts):
        for b in parts[i + 1 :]:
            assert a & b == 0
    assert sum(parts) == m.ours == 0x7F << shift
    assert m.ours | m.others == FULL_MASK and m.ours & m.others == 0
    assert m.ours <= FULL_MASK


@pytest.mark.parametrize("shift", [-1, MAX_SHIFT + 1, 32, True])
def test_shift_out_of_range_is_refused(shift: int) -> None:
    with pytest.raises(ValueError, match="mark shift"):
        Marks(shift)


@pytest.mark.parametrize("shift", SHIFTS)
@pytest.mark.parametrize("state", list(State))
def test_stamp_of_clean_mark_is_stamp_and_state(shift: int, state: State) -> None:
    m = Marks(shift)
    assert m.stamp(0, state) == m.stamp_bit | m.value(state)
    assert m.state_of(m.stamp(0, state)) is state


@pytest.mark.parametrize("shift", SHIFTS)
def test_state_codes_clawgress_never_writes_read_as_none(shift: int) -> None:
    m = Marks(shift)
    for code in range(16):
        mark = code << shift
        expected = State(code) if code <= max(State) else None
        assert m.state_of(mark) is expected


@given(shifts, marks32, states)
def test_stamp_keeps_other_bits_and_queued_and_reset(shift: int, mark: int, state: State) -> None:
    m = Marks(shift)
    out = m.stamp(mark, state)
    assert 0 <= out <= FULL_MASK
    assert out & m.others == mark & m.others
    assert m.is_stamped(out)
    assert m.state_of(out) is state
    assert m.is_queued(out) == m.is_queued(mark)
    assert m.is_reset(out) == m.is_reset(mark)


@given(shifts, marks32, states, states)
def test_stamp_is_idempotent_and_last_state_wins(
    shift: int, mark: int, first: State, second: State
) -> None:
    m = Marks(shift)
    assert m.stamp(m.stamp(mark, first), second) == m.stamp(mark, second)


@given(shifts, marks32, states)
def test_with_state_changes_only_the_state_bits(shift: int, mark: int, state: State) -> None:
    m = Marks(shift)
    out = m.with_state(mark, state)
    assert out & ~m.state_mask & FULL_MASK == mark & ~m.state_mask & FULL_MASK
    assert m.state_of(out) is state


@given(shifts, marks32)
def test_flags_read_their_own_bit_only(shift: int, mark: int) -> None:
    m = Marks(shift)
    assert m.is_queued(mark) == bool(mark & m.queued_bit)
    assert m.is_stamped(mark) == bool(mark & m.stamp_bit)
    assert m.is_reset(mark) == bool(mark & m.reset_bit)
    assert m.is_queued(mark & ~m.queued_bit) is False


def test_marks_are_frozen() -> None:
    m = Marks(20)
    with pytest.raises(AttributeError):
        m.shift = 3  # type: ignore[misc]

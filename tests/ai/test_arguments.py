"""Tool-call arguments: summarized by shape within bounds, and never by value."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from gatewayd.ai import Bounds
from gatewayd.ai.arguments import (
    CallAssembly,
    summarize_argument_text,
    summarize_arguments,
)

SECRET = "sk-live-9f8e7d6c5b4a"
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=30).map(lambda s: s + SECRET),
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.text(alphabet="abcdefgh_", min_size=1, max_size=40), inner,
                      max_size=6),
    max_leaves=60)


def test_shapes() -> None:
    value = {"path": "/etc/passwd", "lines": [1, 2], "opts": {"follow": True, "depth": 2.5},
             "note": None}
    assert summarize_arguments(value, 256) == \
        "{path:str(11),lines:list(2),opts:{follow:bool,depth:float},note:null}"


def test_deep_and_wide_values_are_cut() -> None:
    deep = {"a": {"b": {"c": {"d": 1}}}}
    assert summarize_arguments(deep, 256) == "{a:{b:{c:object(1)}}}"
    wide = {f"k{i}": i for i in range(100)}
    summary = summarize_arguments(wide, 1000)
    assert summary.endswith(",…+68}")
    assert len(summarize_arguments(wide, 40)) == 40


def test_argument_text() -> None:
    bounds = Bounds()
    assert summarize_argument_text('{"q": "x"}', bounds) == "{q:str(1)}"
    assert summarize_argument_text("", bounds) == "{}"
    assert summarize_argument_text("rm -rf /", bounds) == "text(8)"
    big = json.dumps({"blob": "x" * 70_000})
    assert summarize_argument_text(big, bounds) == f"unread({len(big)})"


@given(json_values, st.integers(min_value=8, max_value=300))
@settings(max_examples=300)
def test_no_value_ever_reaches_a_summary(value: object, limit: int) -> None:
    summary = summarize_arguments(value, limit)
    assert SECRET not in summary
    assert len(summary) <= limit


def test_a_streamed_call_is_assembled_from_fragments() -> None:
    calls = CallAssembly(Bounds())
    calls.name(("t", 0), "search")
    for piece in ('{"que', 'ry": "', SECRET, '"}'):
        calls.fragment(("t", 0), piece)
    calls.name(("t", 1), "noop", {})
    [search, noop] = calls.calls()
    assert (search.name, search.arguments) == ("search", "{query:str(20)}")
    assert (noop.name, noop.arguments) == ("noop", "{}")


def test_assembly_is_bounded() -> None:
    bounds = Bounds(max_tool_calls=3, max_argument_bytes=100)
    calls = CallAssembly(bounds)
    for i in range(10):
        calls.name(i, f"tool{i}")
        calls.fragment(i, "x" * 60)
        calls.fragment(i, "x" * 60)
    got = calls.calls()
    assert [c.name for c in got] == ["tool0", "tool1", "tool2"]
    assert got[0].arguments == "unread(120)"

"""``when:`` conditions: compile-time checking, field extraction, evaluation and its failures."""

from __future__ import annotations

from typing import Any

import cel
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatewayd.errors import ClawgressError, PolicyError
from gatewayd.policy.cel_types import OVERLOADS, CelType
from gatewayd.policy.condition import (
    L7_FIELDS,
    MAX_DEPTH,
    MAX_SOURCE_LENGTH,
    SCHEMA,
    Condition,
    ConditionError,
    compile_condition,
)

ACTIVATION: dict[str, Any] = {
    "identity": {
        "agent_id": "agent-7",
        "team_id": "research",
        "project_id": "p1",
        "environment": "dev",
        "workload_fingerprint": "sha256:ab",
    },
    "destination": {"host": "api.openai.com", "ip": "203.0.113.7", "port": 443, "protocol": "tcp"},
    "request": {
        "layer": "l7",
        "sni": "api.openai.com",
        "method": "POST",
        "path": "/v1/chat/completions",
        "provider": "openai",
        "model": "gpt-4o",
        "tools": ["fs_read", "web_search"],
        "dlp_classes": ["pii.email"],
        "token_estimate": 1200,
    },
    "time": {"unix": 1_700_000_000, "hour": 22, "weekday": 2},
}

ACCEPTED = [
    # literals
    ("1 == 1", True),
    ("0x10 == 16", True),
    ("-1 < 0", True),
    ("1u == 1u", True),
    ("1.5 == 1.5", True),
    ("1e3 == 1000.0", True),
    ("\"a\" == 'a'", True),
    ('"""a""" == "a"', True),
    (r'r"\d" == "\\d"', True),
    ('b"ab" == b"ab"', True),
    ("true != false", True),
    ("null == null", True),
    ("[1, 2] == [1, 2]", True),
    ('{"a": 1} == {"a": 1}', True),
    # logic
    ("!false", True),
    ("true && false", False),
    ("false || true", True),
    ('request.model == "gpt-4o" ? destination.port == 443 : false', True),
    ('identity.environment != "prod" || request.token_estimate < 8000', True),
    # comparisons, including CEL's comparisons across numeric types
    ("time.hour >= 9 && time.hour < 23", True),
    ("2u > 1u", True),
    ("1.5 <= 2.5", True),
    ('"a" < "b"', True),
    ('b"a" < b"b"', True),
    ("false < true", True),
    ("time.hour > 21.5", True),
    ("destination.port == 443u", True),
    ("1 == 1.0", True),
    ("1 in [1.0, 2.0]", True),
    # arithmetic
    ("request.token_estimate + 100 == 1300", True),
    ("request.token_estimate - 200 == 1000", True),
    ("request.token_estimate * 2 == 2400", True),
    ("request.token_estimate / 7 == 171", True),
    ("request.token_estimate % 7 == 3", True),
    ("-request.token_estimate < 0", True),
    ("3u - 1u == 2u", True),
    ("7u % 4u == 3u", True),
    ("10.0 / 4.0 == 2.5", True),
    ("-(1.5) < 0.0", True),
    ('"gpt-" + "4o" == request.model', True),
    ('b"a" + b"b" == b"ab"', True),
    ('request.tools + ["x"] == ["fs_read", "web_search", "x"]', True),
    ("int(time.unix / 3600) % 24 == time.hour", True),
    # membership and indexing
    ('"web_search" in request.tools', True),
    ('"pii.email" in request.dlp_classes', True),
    ("destination.port in [80, 443]", True),
    ('"a" in {"a": 1}', True),
    ("time.weekday in [1, 2, 3, 4, 5]", True),
    ('request.tools[0] == "fs_read"', True),
    ('{"a": 1}["a"] == 1', True),
    ("[[1, 2], [3]][0][1] == 2", True),
    ('{"a": {"b": true}}.a.b', True),
    ("(request).token_estimate > 1", True),
    # size, function and method form
    ("size(request.tools) == 2", True),
    ("request.tools.size() == 2", True),
    ("size(request.model) == 6", True),
    ("request.model.size() == 6", True),
    ('size(b"abc") == 3', True),
    ('size({"a": 1}) == 1', True),
    # string tests
    ('request.path.startsWith("/v1/")', True),
    ('request.path.endsWith("/completions")', True),
    ('request.model.contains("4o")', True),
    ('request.model.matches("^gpt-[0-9]")', True),
    ("identity.workload_fingerprint.matches(request.model)", False),
    # has()
    ("has(request.model)", True),
    ('has(request.model) && request.model == "gpt-4o"', True),
    ("has((request.model))", True),
    ('has({"a": 1}.a)', True),
    ('!has({"a": 1}.b)', True),
    # comprehensions
    ('request.tools.exists(t, t.startsWith("web"))', True),
    ('request.tools.all(t, t.contains("_"))', True),
    ('request.tools.exists_one(t, t.startsWith("fs"))', True),
    ("request.tools.map(t, size(t)) == [7, 10]", True),
    ("[1, 2, 3].map(x, x > 1, x * 10) == [20, 30]", True),
    ('request.tools.filter(t, t.startsWith("web")) == ["web_search"]', True),
    ('{"a": 1, "b": 2}.all(k, k in ["a", "b"])', True),
    ('{"a": 1}.exists(k, k == "a")', True),
    ('{"a": 1, "b": 2}.exists_one(k, k == "b")', True),
    ("[[1], [2, 3]].exists(l, l.exists(x, x == 3))", True),
    ('request.tools.exists(request, request == "web_search")', True),
    ("request.tools.exists(t, t == identity.agent_id)", False),
    # conversions
    ('int("42") == 42', True),
    ("int(2.9) == 2", True),
    ("int(7u) == 7", True),
    ("uint(7) == 7u", True),
    ('uint("7") == 7u', True),
    ("uint(7.5) == 7u", True),
    ("double(1) == 1.0", True),
    ('double("2.5") == 2.5', True),
    ("double(3u) == 3.0", True),
    ('string(443) == "443"', True),
    ('string(7u) == "7"', True),
    ('string(1.5) == "1.5"', True),
    ('string(b"ab") == "ab"', True),
    ('string(destination.port) + "/" + destination.protocol == "443/tcp"', True),
    # values typed dyn (heterogeneous literals) are accepted
    ('[1, "a"][0] == 1', True),
    ('{"a": 1, "b": "x"}["b"] == "x"', True),
    ('[true, "a"][0]', True),
    # layout
    ('request.model == "gpt-4o" // the model', True),
    ('request.model == "gpt-4o"\n  && destination.port == 443', True),
]


@pytest.mark.parametrize(("source", "expected"), ACCEPTED)
def test_accepted_expressions_evaluate(source: str, expected: bool) -> None:
    assert compile_condition(source).evaluate(ACTIVATION) is expected


REJECTED = [
    ('request.modle == "x"', "column 9: request has no field modle; fields: layer, sni, method"),
    ("identity.team + 1 == 1", "identity has no field team; fields: agent_id, team_id"),
    ('reqest.model == "x"', "unknown variable reqest; variables: identity, destination, request"),
    ('t == "a" || request.tools.exists(t, true)', "column 1: unknown variable t"),
    ('request.token_estimate > "a"', "column 24: no matching overload for _>_ (int, string)"),
    ('identity.team_id + 1 == "a"', "no matching overload for _+_ (string, int)"),
    ("size(1) == 1", "no matching overload for size (int)"),
    ("size(request.tools, 1) == 1", "no matching overload for size (list(string), int)"),
    ('"a".startsWith(1)', "no matching overload for startsWith (string, int)"),
    ('string(true) == "true"', "no matching overload for string (bool)"),
    ('int(b"1") == 1', "no matching overload for int (bytes)"),
    ("1 + 1.5 == 2.5", "no matching overload for _+_ (int, double)"),
    ("1 + 1u == 2", "no matching overload for _+_ (int, uint)"),
    ("1.5 % 1.0 == 0.5", "no matching overload for _%_ (double, double)"),
    ('-"a" == "a"', "no matching overload for -_ (string)"),
    ("-1u == 1u", "no matching overload for -_ (uint)"),
    ("!1", "no matching overload for !_ (int)"),
    ("1 && true", "no matching overload for _&&_ (int, bool)"),
    ('destination.port == "443"', "no matching overload for _==_ (int, string)"),
    ('[1] == ["a"]', "no matching overload for _==_ (list(int), list(string))"),
    ("request.model == null", "_==_ (string, null_type); use has() to test whether a field is set"),
    ('"a" in request.model', "no matching overload for @in (string, string)"),
    ("1 in request.tools", "no matching overload for @in (int, list(string))"),
    ('request.tools["a"] == "x"', "no matching overload for _[_] (list(string), string)"),
    ("[1, 2][1u] == 2", "no matching overload for _[_] (list(int), uint)"),
    ('{1: "a"}[1u] == "a"', "no matching overload for _[_] (map(int, string), uint)"),
    ('request["model"] == "x"', "no matching overload for _[_] (request, string)"),
    ('true ? 1 : "a"', "no matching overload for _?_:_ (bool, int, string)"),
    ("1 ? true : false", "no matching overload for _?_:_ (int, bool, bool)"),
    ("{1.5: true}[1.5]", "map keys must be int, uint, bool or string, not double"),
    ("request.model.x == 1", "cannot select field x of string"),
    ("foo(1)", "unknown function foo; functions: has, size, int, uint, double, string"),
    ("type(1) == int", "unknown function type"),
    ('startsWith(request.model, "g")', "unknown function startsWith"),
    ('request.model.lower() == "x"', "unknown method lower; methods: size, startsWith"),
    ("request.model", "column 1: a condition must give a bool, not string"),
    ("request.tools", "a condition must give a bool, not list(string)"),
    ("1 + 2", "a condition must give a bool, not int"),
    ("has(request)", "has() needs one field selection, such as has(request.model)"),
    ("has(request.nope)", "column 13: request has no field nope"),
    ("has(request.model.x)", "has() cannot test a field of string"),
    ("request.exists(x, true)", "exists() needs a list or a map, not request"),
    ("request.tools.exists(t, t)", "exists() condition must give a bool, not string"),
    ("request.tools.all(1, true)", "all() needs a variable name as its first argument"),
    ("request.tools.map(t)", "map() takes 2 or 3 arguments"),
    ("request.tools.exists(t, t == 1)", "no matching overload for _==_ (string, int)"),
    ('{"a": 1}.map(k, k) == ["a"]', "map() over a map is not supported (keys have no order)"),
    ('{"a": 1}.filter(k, true) == ["a"]', "filter() over a map is not supported"),
    ('request.model.matches("(")', "column 23: invalid regular expression: unclosed group"),
    ('.request.model == "x"', "a leading-dot name is not supported"),
    ("Msg{a: 1}", "message construction is not supported"),
    ("1 +", "column 4: syntax error: unexpected end of expression"),
    ("(1 == 1", "syntax error: unexpected end of expression"),
    ("a $ b", "column 3: syntax error: unexpected character '$'"),
    ("1 == 1 )", "column 8: syntax error: unexpected ')'"),
    ("", "expression is empty"),
    ("  ", "expression is empty"),
    # refused by the evaluator's own parser after the checker accepted them
    ("99999999999999999999 > 1", "column 1: invalid int literal"),
    (r'"\q" == "q"', "column 1: syntax error: token recognition error"),
    # multi-line expressions name the line
    ('request.model == "a" &&\n  request.modle == "b"', "line 2, column 11: request has no field"),
    ("true &&\n (1 +", "line 2, column 6: syntax error: unexpected end of expression"),
]


@pytest.mark.parametrize(("source", "fragment"), REJECTED)
def test_rejected_expressions_name_the_problem(source: str, fragment: str) -> None:
    with pytest.raises(PolicyError) as info:
        compile_condition(source)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_unknown_field_lists_the_schema_fields() -> None:
    with pytest.raises(PolicyError, match="fields: ") as info:
        compile_condition('request.modle == "x"')
    assert str(info.value).endswith("fields: " + ", ".join(SCHEMA["request"]))


@pytest.mark.parametrize(
    ("source", "fields", "needs_l7"),
    [
        ('request.method == "POST" && identity.team_id == "x"',
         {"request.method", "identity.team_id"}, True),
        ("destination.port == 443", {"destination.port"}, False),
        ('request.layer == "l4"', {"request.layer"}, False),
        ('request.sni.endsWith(".example.com")', {"request.sni"}, False),
        ("has(request.model)", {"request.model"}, True),
        ("time.hour < 6 || time.weekday == 0", {"time.hour", "time.weekday"}, False),
        ("request.tools.exists(t, t == identity.agent_id)",
         {"request.tools", "identity.agent_id"}, True),
        ("(request).token_estimate > 1", {"request.token_estimate"}, True),
        ('request.tools.exists(request, request == "x")', {"request.tools"}, True),
        ("identity == identity", {f"identity.{f}" for f in SCHEMA["identity"]}, False),
        ('[request][0].layer == "l7"', {f"request.{f}" for f in SCHEMA["request"]}, True),
        ("true", set(), False),
    ],
)
def test_fields_and_needs_l7(source: str, fields: set[str], needs_l7: bool) -> None:
    condition = compile_condition(source)
    assert condition.fields == frozenset(fields)
    assert condition.needs_l7 is needs_l7


def test_l7_fields_are_request_fields_of_the_schema() -> None:
    assert {f"request.{name}" for name in SCHEMA["request"]} >= L7_FIELDS
    assert {"request.layer", "request.sni"}.isdisjoint(L7_FIELDS)


@pytest.mark.parametrize(("root", "name"), [(r, f) for r in SCHEMA for f in SCHEMA[r]])
def test_every_schema_field_can_be_tested(root: str, name: str) -> None:
    condition = compile_condition(f"has({root}.{name})")
    assert condition.fields == {f"{root}.{name}"}
    assert condition.evaluate(ACTIVATION) is True
    assert condition.evaluate({}) is False


def _without(root: str, name: str) -> dict[str, Any]:
    return {**ACTIVATION, root: {k: v for k, v in ACTIVATION[root].items() if k != name}}


RUNTIME_FAILURES = [
    ('request.model == "x"', {}, "request.model is not set"),
    ('request.model == "x"', _without("request", "model"), "request.model is not set"),
    ("destination.port == 1 || time.hour == 1", {"destination": {"port": 2}},
     "time.hour is not set"),
    ('[1, "a"][1] > 1', ACTIVATION, "no matching overload for _>_ (string, int) at column 13"),
    ('size([1, "a"][0]) == 1', ACTIVATION, "no matching overload for size (int) at column 1"),
    ("[true, 1][1]", ACTIVATION, "the condition gave int, not bool"),
    ('{"a": true, "b": "yes"}[size(identity.team_id) > 3 ? "b" : "a"]', ACTIVATION,
     "the condition gave string, not bool"),
    ("request.token_estimate / (time.hour - 22) == 0", ACTIVATION, "division by zero"),
    ("request.token_estimate % (time.hour - 22) == 0", ACTIVATION, "modulo by zero"),
    ('request.tools[5] == "x"', ACTIVATION, "list index out of range"),
    ('{"a": 1}[identity.team_id] == 1', ACTIVATION, "no such key in map"),
    ("int(request.model) == 1", ACTIVATION, "int() failed: string parse error"),
    ("uint(-1 * request.token_estimate) == 1u", ACTIVATION, "uint() argument out of range"),
    ("request.token_estimate * 9223372036854775807 > 0", ACTIVATION, "overflow"),
    ('request.model.matches(identity.team_id + "(")', ACTIVATION,
     "matches() failed: invalid regular expression"),
]


@pytest.mark.parametrize(("source", "activation", "fragment"), RUNTIME_FAILURES)
def test_runtime_failures_raise_condition_error(
    source: str, activation: dict[str, Any], fragment: str
) -> None:
    condition = compile_condition(source)
    with pytest.raises(ConditionError) as info:
        condition.evaluate(activation)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_runtime_messages_do_not_quote_request_values() -> None:
    secret = "sk-live-0123456789"
    activation = {"request": {"path": secret + "(", "model": secret}}
    for source in ('request.model.matches(request.path)', '{"a": 1}[request.model] == 1',
                   "int(request.model) == 1"):
        with pytest.raises(ConditionError) as info:
            compile_condition(source).evaluate(activation)
        assert secret not in str(info.value)


def test_has_guards_an_unset_field() -> None:
    guarded = compile_condition('has(request.model) && request.model == "gpt-4o"')
    assert guarded.evaluate({"request": {"layer": "l4"}}) is False
    assert guarded.evaluate(ACTIVATION) is True
    unguarded = compile_condition('request.model == "gpt-4o"')
    with pytest.raises(ConditionError, match=r"^request\.model is not set$"):
        unguarded.evaluate({"request": {"layer": "l4"}})


def test_absent_top_level_objects_are_empty() -> None:
    assert compile_condition("has(identity.team_id)").evaluate({}) is False


def test_condition_error_is_a_clawgress_error() -> None:
    assert issubclass(ConditionError, ClawgressError)


def test_condition_is_a_frozen_value() -> None:
    a, b = compile_condition("time.hour < 6"), compile_condition("time.hour < 6")
    assert a == b
    assert hash(a) == hash(b)
    assert a.source == "time.hour < 6"
    assert "_program" not in repr(a)
    with pytest.raises(AttributeError):
        a.source = "true"  # type: ignore[misc]
    assert isinstance(a, Condition)


# --- bounds -----------------------------------------------------------------------------


def test_source_length_is_bounded() -> None:
    def sized(n: int) -> str:
        prefix = 'size("'
        suffix = '") > 0'
        return prefix + "a" * (n - len(prefix) - len(suffix)) + suffix

    assert len(sized(MAX_SOURCE_LENGTH)) == MAX_SOURCE_LENGTH
    assert compile_condition(sized(MAX_SOURCE_LENGTH)).evaluate({}) is True
    with pytest.raises(PolicyError, match=f"^expression is longer than {MAX_SOURCE_LENGTH} "):
        compile_condition(sized(MAX_SOURCE_LENGTH + 1))


def test_nesting_depth_is_bounded() -> None:
    at_limit = "(" * MAX_DEPTH + "true" + ")" * MAX_DEPTH
    assert compile_condition(at_limit).evaluate({}) is True
    with pytest.raises(PolicyError, match=f"nested more than {MAX_DEPTH} levels deep"):
        compile_condition("(" + at_limit + ")")


NESTED_SHAPES = {
    "parens": lambda n: "(" * n + "true" + ")" * n,
    "lists": lambda n: "[" * n + "true" + "]" * n + " != []",
    "maps": lambda n: '{"a": ' * n + "true" + "}" * n + " != {}",
    "calls": lambda n: "string(size(" * n + '"a"' + "))" * n + ' == "1"',
    "exists": lambda n: "[1]" + ".exists(x, [1]" * n + ".exists(y, true)" + ")" * n,
    "selects": lambda n: '{"a": ' * n + "true" + "}" * n + ".a" * n,
    "index": lambda n: "[" * n + "true" + "]" * n + "[0]" * n,
    "negations": lambda n: "-(" * n + "1" + ")" * n + " == 1",
}


def _error_of(source: str) -> str:
    try:
        compile_condition(source)
    except PolicyError as exc:
        return str(exc)
    return ""


@pytest.mark.parametrize("shape", NESTED_SHAPES)
def test_depth_bound_is_reached_before_the_evaluators_limit(shape: str) -> None:
    build = NESTED_SHAPES[shape]
    first_error = next(e for e in map(_error_of, map(build, range(1, MAX_DEPTH + 2))) if e)
    assert "levels deep" in first_error


@pytest.mark.parametrize(
    "source",
    [
        " || ".join(["time.hour == 1"] * 200),
        " && ".join(["true"] * 500),
        "1" + " + 1" * 900 + " > 0",
        "!" * 4000 + "true",
    ],
)
def test_long_flat_chains_are_not_deep(source: str) -> None:
    condition = compile_condition(source)
    assert isinstance(condition.evaluate({"time": {"hour": 1}}), bool)


# --- the checker's overload table against the evaluator ------------------------------------

SAMPLES = {
    "int": "7", "uint": "7u", "double": "2.5", "string": '"7"', "bytes": 'b"ab"',
    "bool": "true", "list(dyn)": "[1]", "map(dyn, dyn)": '{"a": 1}',
}
_PREFIX = {"!_": "!", "-_": "-"}
_METHODS = {"startsWith", "endsWith", "contains", "matches"}


def _call(name: str, args: list[str]) -> str:
    if name in _PREFIX:
        return f"{_PREFIX[name]}({args[0]})"
    if name.startswith("_"):
        symbol = name.strip("_")
        return f"({args[0]}) {symbol} ({args[1]})"
    if name in _METHODS:
        return f"({args[0]}).{name}({args[1]})"
    return f"{name}({', '.join(args)})"


@pytest.mark.parametrize(
    ("name", "params", "result"),
    [(name, params, result) for name, sigs in OVERLOADS.items() for params, result in sigs],
    ids=lambda v: str(v) if isinstance(v, str | CelType) else ",".join(map(str, v)),
)
def test_every_overload_the_checker_accepts_runs_in_the_evaluator(
    name: str, params: tuple[CelType, ...], result: CelType
) -> None:
    expression = _call(name, [SAMPLES[str(p)] for p in params])
    assert cel.evaluate(f"type({expression})") == str(result)


# --- properties ---------------------------------------------------------------------------

TOKENS = [
    "request", "identity", "destination", "time", ".", "model", "tools", "port", "hour",
    "token_estimate", "(", ")", "[", "]", "{", "}", ",", ":", "?", "!", "-", "+", "*", "/",
    "%", "==", "!=", "<", ">=", "&&", "||", " in ", "1", "0", "2u", "1.5", '"a"', 'b"c"',
    "true", "null", "size", "int", "string", "has", "exists", "map", "x", "startsWith",
    "matches", '"("', " ", "\n",
]


@settings(max_examples=400, deadline=None, database=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=16).map("".join))
def test_compile_accepts_or_raises_one_policy_error_line(source: str) -> None:
    try:
        condition = compile_condition(source)
    except PolicyError as exc:
        message = str(exc)
    else:
        message = "".join(_outcome(condition, a) for a in (ACTIVATION, {}))
    assert "\n" not in message


def _outcome(condition: Condition, activation: dict[str, Any]) -> str:
    """``"True"``/``"False"``, or the ``ConditionError`` message."""
    try:
        return str(condition.evaluate(activation))
    except ConditionError as exc:
        return str(exc)


def _typed_expressions() -> st.SearchStrategy[str]:
    """Bool expressions built from typed parts only, so nothing in them is ``dyn``."""
    ints = st.recursive(
        st.sampled_from(["1", "0", "time.hour", "request.token_estimate", "size(request.tools)"]),
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "%"]), inner).map(" ".join),
            inner.map(lambda e: f"-({e})"),
            st.sampled_from(["request.model", '"ab"']).map(lambda e: f"size({e})"),
        ),
        max_leaves=4,
    )
    strings = st.sampled_from(['"a"', "request.model", "identity.team_id", "request.tools[0]"])
    atoms = st.one_of(
        st.tuples(ints, st.sampled_from(["==", "!=", "<", ">="]), ints).map(" ".join),
        st.tuples(strings, st.sampled_from(["==", "<"]), strings).map(" ".join),
        strings.map(lambda s: f"{s}.startsWith(\"a\")"),
        strings.map(lambda s: f"{s} in request.tools"),
        st.sampled_from(["has(request.model)", "request.tools.exists(t, t.contains(\"_\"))"]),
    )
    return st.recursive(
        atoms,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["&&", "||"]), inner).map(" ".join),
            inner.map(lambda e: f"!({e})"),
            st.tuples(inner, inner, inner).map(lambda t: f"({t[0]}) ? ({t[1]}) : ({t[2]})"),
        ),
        max_leaves=6,
    )


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(_typed_expressions(), st.sampled_from([ACTIVATION, {}]))
def test_a_checked_expression_without_dyn_never_misses_an_overload(
    source: str, activation: dict[str, Any]
) -> None:
    assert "overload" not in _outcome(compile_condition(source), activation)

"""Optional ``when:`` conditions on policy rules, written in CEL.

``compile_condition`` parses an expression with cel-python's Lark grammar, type-checks it against
the fixed activation ``SCHEMA`` (``condition_check``), and compiles it with the Rust CEL
interpreter, which evaluates it; both must accept it. Every problem is one ``PolicyError``
line naming the column.

``Condition.evaluate`` takes the activation as nested dicts holding only the fields that are
set (an unset field is absent, never None) and returns a bool. Any runtime failure is a
``ConditionError`` with a one-line message; the policy engine fails closed on it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any

import cel
from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

from gatewayd.errors import ClawgressError, PolicyError
from gatewayd.policy.cel_types import (
    GLOBAL_FUNCTIONS,
    LIST,
    MAP,
    METHODS,
    PRIMITIVES,
    CelType,
    resolve,
)
from gatewayd.policy.condition_check import Checker, Site, where

MAX_SOURCE_LENGTH = 4096
MAX_DEPTH = 64

SCHEMA: Mapping[str, Mapping[str, str]] = MappingProxyType({
    "identity": MappingProxyType({
        "agent_id": "string",
        "team_id": "string",
        "project_id": "string",
        "environment": "string",
        "workload_fingerprint": "string",
    }),
    "destination": MappingProxyType({
        "host": "string",  # the destination name, when known
        "ip": "string",  # text form
        "port": "int",
        "protocol": "string",  # "tcp" or "udp"
    }),
    "request": MappingProxyType({
        "layer": "string",  # "l4" or "l7"
        "sni": "string",
        "method": "string",
        "path": "string",
        "provider": "string",
        "model": "string",
        "tools": "list(string)",
        "dlp_classes": "list(string)",
        "token_estimate": "int",
    }),
    "time": MappingProxyType({
        "unix": "int",  # seconds
        "hour": "int",  # 0-23, UTC
        "weekday": "int",  # 0 = Sunday … 6, like CEL's getDayOfWeek
    }),
})

# The request fields only the L7 engine can fill; a condition reading one needs inspection.
L7_FIELDS = frozenset({
    "request.method",
    "request.path",
    "request.provider",
    "request.model",
    "request.tools",
    "request.dlp_classes",
    "request.token_estimate",
})

# The request fields filled from the request's body (the AI protocol analyzer and DLP): a
# policy that reads one has the L7 engine read a body before it decides.
BODY_FIELDS = frozenset({
    "request.provider",
    "request.model",
    "request.tools",
    "request.dlp_classes",
    "request.token_estimate",
})


class ConditionError(ClawgressError):
    """A condition could not be evaluated; ``str(err)`` is one line."""


@dataclass(frozen=True)
class Condition:
    """A compiled ``when:`` expression. Build it with ``compile_condition``."""

    source: str
    fields: frozenset[str]  # the dotted schema fields the expression reads
    _program: cel.Program = field(repr=False, compare=False)
    _sites: tuple[Site, ...] = field(default=(), repr=False, compare=False)

    @property
    def needs_l7(self) -> bool:
        """Whether the expression reads a field only the L7 engine fills."""
        return not self.fields.isdisjoint(L7_FIELDS)

    @property
    def reads_body(self) -> bool:
        """Whether the expression reads a field filled from the request's body."""
        return not self.fields.isdisjoint(BODY_FIELDS)

    def evaluate(self, activation: Mapping[str, Any]) -> bool:
        """The condition's value; raises ``ConditionError`` if it has none."""
        context = {**_EMPTY_ROOTS, **activation}
        try:
            result = self._program.execute(context)
        except BaseException as exc:
            # A Rust panic arrives as pyo3's PanicException, a BaseException: fail closed on
            # it like on any other error, but let KeyboardInterrupt and friends through.
            if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
                raise
            raise ConditionError(self._explain(exc, context)) from None
        if not isinstance(result, bool):
            raise ConditionError(f"the condition gave {_type_name(result)}, not bool")
        return result

    def _explain(self, exc: BaseException, activation: Mapping[str, Any]) -> str:
        text = str(exc.args[0]) if exc.args else ""
        if isinstance(exc, KeyError):
            return self._missing(text.strip("'\""), activation)
        if isinstance(exc, ZeroDivisionError):
            return "modulo by zero" if "modulo" in text else "division by zero"
        if isinstance(exc, IndexError):
            return "list index out of range"
        function = re.match(r"Function '(\w+)' error: ([^\n]*?)\.?(?: Check |\n|$)", text)
        if isinstance(exc, OverflowError):
            return f"{function.group(1)}() argument out of range" if function else "overflow"
        if function:
            # The evaluator quotes argument values (a regex built from request data, say);
            # values must not reach logs, so such details are replaced.
            detail = function.group(2)
            if "regex" in detail:
                detail = "invalid regular expression"
            elif "'" in detail or '"' in detail:
                detail = "invalid argument"
            return f"{function.group(1)}() failed: {detail}"
        undefined = re.match(r"Undefined variable or function: '([\w.]+)'", text)
        if undefined and undefined.group(1) not in _FUNCTIONS:
            return f"{undefined.group(1)} is not defined"
        if isinstance(exc, TypeError | RuntimeError):
            return self._overload(activation)
        return f"evaluation failed ({type(exc).__name__})"

    def _missing(self, key: str, activation: Mapping[str, Any]) -> str:
        for name in sorted(self.fields):
            root, _, leaf = name.partition(".")
            if leaf == key and key not in activation.get(root, {}):
                return f"{name} is not set"
        return "no such key in map"

    def _overload(self, activation: Mapping[str, Any]) -> str:
        """Name the call that had no overload by asking the evaluator for its operand types."""
        for site in self._sites:
            try:
                names = [str(cel.evaluate(f"type({text})", dict(activation)))
                         for text in site.operands]
            except Exception:  # noqa: S112 - an operand bound by a comprehension: next site
                continue
            types = [_RUNTIME_TYPES.get(n, CelType(n)) for n in names]
            if resolve(site.name, types) is None:
                return f"no matching overload for {site.name} ({', '.join(names)}) at {site.where}"
        return "no matching overload for the operand types at runtime"


@functools.lru_cache(maxsize=4096)
def compile_condition(source: str) -> Condition:
    """Parse, type-check and compile ``source``; raises ``PolicyError`` (one line) if invalid.

    Conditions are immutable, so bundles that repeat one (and recompiles of the same
    bundle) share its compiled form.
    """
    if len(source) > MAX_SOURCE_LENGTH:
        raise PolicyError(f"expression is longer than {MAX_SOURCE_LENGTH} characters")
    if not source.strip():
        raise PolicyError("expression is empty")
    checked = Checker(source, SCHEMA, MAX_DEPTH).check(_parse(source))
    for at, literal in checked.patterns:
        _check_pattern(at, literal)
    try:
        program = cel.compile(source)
    except Exception as exc:
        raise PolicyError(_compile_message(str(exc), multiline="\n" in source)) from None
    return Condition(source, checked.fields, program, checked.sites)


@functools.cache
def _parser() -> Lark:
    """cel-python's grammar and parser options, with a lexer callback that keeps positions.

    ``celpy.CELParser`` turns ``true``/``false`` into literal tokens without a position, so
    error columns would be lost; this builds the same LALR parser with that one fix.
    """
    grammar = (resources.files("celpy") / "cel.lark").read_text()
    return Lark(
        grammar,
        parser="lalr",
        start="expr",
        g_regex_flags=re.MULTILINE,
        lexer_callbacks={"IDENT": _bool_literal},
        propagate_positions=True,
        maybe_placeholders=False,
        priority="invert",
    )


def _bool_literal(token: Token) -> Token:
    if token.value in ("true", "false"):
        return Token.new_borrow_pos("BOOL_LIT", token.value, token)
    return token


def _parse(source: str) -> Tree[Token]:
    try:
        return _parser().parse(source)
    except UnexpectedEOF:
        pos, what = len(source.rstrip()), "unexpected end of expression"
    except UnexpectedToken as exc:
        if exc.token.type == "$END":
            pos, what = len(source.rstrip()), "unexpected end of expression"
        else:
            pos, what = exc.token.start_pos or 0, f"unexpected {exc.token.value!r}"
    except UnexpectedCharacters as exc:
        pos, what = exc.pos_in_stream or 0, f"unexpected character {exc.char!r}"
    except LarkError:
        pos, what = 0, "not a valid expression"
    raise PolicyError(f"{where(source, pos)}: syntax error: {what}")


def _check_pattern(at: str, literal: str) -> None:
    """A literal given to ``matches`` must be a regular expression the evaluator accepts."""
    try:
        cel.evaluate(f'"".matches({literal})')
    except Exception as exc:
        reason = re.search(r"^error: (.*?)\.?(?: Check .*)?$", str(exc), re.MULTILINE)
        detail = f": {reason.group(1)}" if reason else ""
        raise PolicyError(f"{at}: invalid regular expression{detail}") from None


def _compile_message(text: str, multiline: bool) -> str:
    """The first of the evaluator's compile errors, shortened to one line."""
    found = re.search(r"ERROR: <input>:(\d+):(\d+): ([^\n]*)", text)
    if not found:
        return f"the evaluator rejected the expression: {_first_line(text)}"
    line, column, message = found.groups()
    message = message.split(" expecting ")[0]
    message = message[:1].lower() + message[1:]
    at = f"line {line}, column {column}" if multiline else f"column {column}"
    return f"{at}: {message}"


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0][:200]


def _type_name(value: object) -> str:
    names = {bool: "bool", int: "int", float: "double", str: "string", bytes: "bytes",
             list: "list", dict: "map", type(None): "null_type"}
    return names.get(type(value), type(value).__name__)


_EMPTY_ROOTS: Mapping[str, Mapping[str, Any]] = {root: {} for root in SCHEMA}
_RUNTIME_TYPES = {**PRIMITIVES, "list": LIST, "map": MAP}
_FUNCTIONS = frozenset(GLOBAL_FUNCTIONS + METHODS)

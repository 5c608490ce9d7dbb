"""CEL types, and the operator and function overloads ``when:`` conditions may use.

Types follow CEL's checker: ``int``, ``uint``, ``double``, ``string``, ``bytes``, ``bool``,
``null_type``, ``list(T)``, ``map(K, V)``, the schema's message types, and ``dyn`` where
nothing more is known. Anything meeting ``dyn`` type-checks.

``OVERLOADS`` is the table of the overloads Clawgress supports, as data; the few operators
a table cannot say (equality, ``in``, indexing, list concatenation, ``?:``) have a rule
each. ``resolve`` gives the result type of a call, or None when no overload matches. The
walk over an expression that uses these is ``condition_check``. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias


@dataclass(frozen=True)
class CelType:
    """A CEL type: a name and, for ``list`` and ``map``, its parameters."""

    name: str
    params: tuple[CelType, ...] = ()

    def __str__(self) -> str:
        if not self.params:
            return self.name
        return f"{self.name}({', '.join(str(p) for p in self.params)})"


DYN = CelType("dyn")
BOOL = CelType("bool")
INT = CelType("int")
UINT = CelType("uint")
DOUBLE = CelType("double")
STRING = CelType("string")
BYTES = CelType("bytes")
NULL = CelType("null_type")


def list_of(elem: CelType) -> CelType:
    return CelType("list", (elem,))


def map_of(key: CelType, value: CelType) -> CelType:
    return CelType("map", (key, value))


LIST = list_of(DYN)
MAP = map_of(DYN, DYN)
PRIMITIVES = {t.name: t for t in (DYN, BOOL, INT, UINT, DOUBLE, STRING, BYTES, NULL)}


def parse_type(text: str) -> CelType:
    """``"string"``, ``"list(string)"``: the notation ``SCHEMA`` and error messages use."""
    if text in PRIMITIVES:
        return PRIMITIVES[text]
    if text.startswith("list(") and text.endswith(")"):
        return list_of(parse_type(text[5:-1]))
    raise ValueError(f"unsupported schema type {text!r}")


Signature: TypeAlias = tuple[tuple[CelType, ...], CelType]

_NUMERIC = (INT, UINT, DOUBLE)
_ORDERED = (*_NUMERIC, STRING, BYTES, BOOL)
# The types a map key may have (``dyn`` where it is only known at runtime).
MAP_KEYS = (INT, UINT, BOOL, STRING, DYN)


def _same(types: Sequence[CelType], result: CelType | None = None) -> tuple[Signature, ...]:
    return tuple(((t, t), result or t) for t in types)


def _unary(args: Sequence[CelType], result: CelType) -> tuple[Signature, ...]:
    return tuple(((a,), result) for a in args)


# CEL does not coerce: arithmetic needs operands of one type. Comparisons also accept any
# pair of numeric types (CEL's heterogeneous numeric comparison, which the evaluator has).
_ORDERING = _same(_ORDERED, BOOL) + tuple(
    ((a, b), BOOL) for a in _NUMERIC for b in _NUMERIC if a != b
)
_STRING_TEST = (((STRING, STRING), BOOL),)

OVERLOADS: Mapping[str, tuple[Signature, ...]] = {
    "!_": (((BOOL,), BOOL),),
    "-_": (((INT,), INT), ((DOUBLE,), DOUBLE)),
    "_&&_": (((BOOL, BOOL), BOOL),),
    "_||_": (((BOOL, BOOL), BOOL),),
    "_+_": _same((*_NUMERIC, STRING, BYTES)),
    "_-_": _same(_NUMERIC),
    "_*_": _same(_NUMERIC),
    "_/_": _same(_NUMERIC),
    "_%_": _same((INT, UINT)),
    "_<_": _ORDERING,
    "_<=_": _ORDERING,
    "_>_": _ORDERING,
    "_>=_": _ORDERING,
    "size": _unary((STRING, BYTES, LIST, MAP), INT),
    "int": _unary((INT, UINT, DOUBLE, STRING), INT),
    "uint": _unary((INT, UINT, DOUBLE, STRING), UINT),
    "double": _unary((INT, UINT, DOUBLE, STRING), DOUBLE),
    "string": _unary((INT, UINT, DOUBLE, STRING, BYTES), STRING),
    "startsWith": _STRING_TEST,
    "endsWith": _STRING_TEST,
    "contains": _STRING_TEST,
    "matches": _STRING_TEST,
}
GLOBAL_FUNCTIONS = ("has", "size", "int", "uint", "double", "string")
METHODS = ("size", "startsWith", "endsWith", "contains", "matches")
MACROS = ("exists", "all", "exists_one", "map", "filter")


def fits(a: CelType, b: CelType) -> bool:
    """Whether a value of type ``b`` may be where ``a`` is expected (``dyn`` fits anything)."""
    if DYN in (a, b) or a == b:
        return True
    return (
        a.name == b.name
        and len(a.params) == len(b.params)
        and all(fits(x, y) for x, y in zip(a.params, b.params, strict=True))
    )


def join(a: CelType, b: CelType) -> CelType:
    """The most specific type of a value that is either ``a`` or ``b``."""
    if a == b:
        return a
    if a.name == b.name and len(a.params) == len(b.params) and fits(a, b):
        return CelType(a.name, tuple(join(x, y) for x, y in zip(a.params, b.params, strict=True)))
    return DYN


def _comparable(a: CelType, b: CelType) -> bool:
    return fits(a, b) or (a in _NUMERIC and b in _NUMERIC)


def _is_key(key: CelType, key_type: CelType) -> bool:
    return key in MAP_KEYS and fits(key_type, key)


def _equality(args: Sequence[CelType]) -> CelType | None:
    return BOOL if len(args) == 2 and _comparable(*args) else None


def _membership(args: Sequence[CelType]) -> CelType | None:
    item, coll = args
    if coll == DYN or (coll.name == "list" and _comparable(item, coll.params[0])):
        return BOOL
    return BOOL if coll.name == "map" and _is_key(item, coll.params[0]) else None


def _index(args: Sequence[CelType]) -> CelType | None:
    coll, key = args
    if coll == DYN:
        return DYN
    if coll.name == "list" and key in (INT, DYN):
        return coll.params[0]
    return coll.params[1] if coll.name == "map" and _is_key(key, coll.params[0]) else None


def _plus(args: Sequence[CelType]) -> CelType | None:
    a, b = args
    if a.name == "list" and b.name == "list":
        return list_of(join(a.params[0], b.params[0]))
    if (a == DYN and b.name == "list") or (b == DYN and a.name == "list"):
        return DYN
    return _table("_+_", args)


def _conditional(args: Sequence[CelType]) -> CelType | None:
    cond, a, b = args
    return join(a, b) if cond in (BOOL, DYN) and fits(a, b) else None


_SPECIAL: Mapping[str, Callable[[Sequence[CelType]], CelType | None]] = {
    "_==_": _equality,
    "_!=_": _equality,
    "@in": _membership,
    "_[_]": _index,
    "_+_": _plus,
    "_?_:_": _conditional,
}


def _table(name: str, args: Sequence[CelType]) -> CelType | None:
    results = {
        result
        for params, result in OVERLOADS.get(name, ())
        if len(params) == len(args) and all(fits(p, a) for p, a in zip(params, args, strict=True))
    }
    if not results:
        return None
    return results.pop() if len(results) == 1 else DYN


def resolve(name: str, args: Sequence[CelType]) -> CelType | None:
    """The result type of ``name`` applied to ``args``, or None if no overload matches."""
    special = _SPECIAL.get(name)
    return special(args) if special else _table(name, args)

"""Static type checking of ``when:`` conditions, a walk over cel-python's Lark parse tree.

The checker knows the activation schema (message types with typed fields), the overloads in
``cel_types``, and the scoping of comprehension variables. It returns the expression's
type, the schema fields it reads, and the places where a ``dyn`` operand means the overload
can only be chosen at runtime. Every problem is a ``PolicyError`` with one line that names
the line/column. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeAlias

from lark import Token, Tree

from gatewayd.errors import PolicyError
from gatewayd.policy.cel_types import (
    BOOL,
    BYTES,
    DOUBLE,
    DYN,
    GLOBAL_FUNCTIONS,
    INT,
    MACROS,
    MAP_KEYS,
    METHODS,
    NULL,
    STRING,
    UINT,
    CelType,
    join,
    list_of,
    map_of,
    parse_type,
    resolve,
)

Node: TypeAlias = "Tree[Token]"

# Rules that only wrap their single child (precedence levels, ``member``, ``primary``).
_PASS = frozenset(
    ("expr", "conditionalor", "conditionaland", "relation", "addition", "multiplication",
     "unary", "member", "primary")
)
# Binary rules as ``[wrapper(left), right]``: the wrapper names the operator.
_WRAPPED_OPS = {
    "relation_lt": ("_<_", "<"), "relation_le": ("_<=_", "<="), "relation_gt": ("_>_", ">"),
    "relation_ge": ("_>=_", ">="), "relation_eq": ("_==_", "=="), "relation_ne": ("_!=_", "!="),
    "relation_in": ("@in", "in"), "addition_add": ("_+_", "+"), "addition_sub": ("_-_", "-"),
    "multiplication_mul": ("_*_", "*"), "multiplication_div": ("_/_", "/"),
    "multiplication_mod": ("_%_", "%"),
}
_LOGICAL_OPS = {"conditionalor": ("_||_", "||"), "conditionaland": ("_&&_", "&&")}
_CHAINS = frozenset((*_LOGICAL_OPS, "relation", "addition", "multiplication"))
_LITERALS = {
    "INT_LIT": INT, "UINT_LIT": UINT, "FLOAT_LIT": DOUBLE, "STRING_LIT": STRING,
    "MLSTRING_LIT": STRING, "BYTES_LIT": BYTES, "BOOL_LIT": BOOL, "NULL_LIT": NULL,
}


def where(source: str, pos: int) -> str:
    """``column 7``, or ``line 2, column 3`` for a multi-line expression (both 1-based)."""
    column = pos - source.rfind("\n", 0, pos)
    if "\n" not in source:
        return f"column {column}"
    line = source.count("\n", 0, pos) + 1
    return f"line {line}, column {column}"


@dataclass(frozen=True)
class Site:
    """A call whose overload depends on a ``dyn`` operand: it may fail at runtime."""

    name: str
    where: str
    operands: tuple[str, ...]  # the source text of each operand


@dataclass(frozen=True)
class Checked:
    type: CelType
    fields: frozenset[str]
    sites: tuple[Site, ...]
    patterns: tuple[tuple[str, str], ...]  # (where, source of a string literal given to matches)


def _trees(node: Node) -> list[Node]:
    return [c for c in node.children if isinstance(c, Tree)]


def _token(node: Node) -> Token:
    return next(c for c in node.children if isinstance(c, Token))


def _pos(token: Token) -> int:
    return token.start_pos or 0


def _unwrap(node: Node, parens: bool = False) -> Node:
    while True:
        kids = node.children
        if (
            len(kids) == 1
            and isinstance(kids[0], Tree)
            and (node.data in _PASS or (parens and node.data == "paren_expr"))
        ):
            node = kids[0]
            continue
        return node


class Checker:
    """One use: ``Checker(source, schema, max_depth).check(tree)``."""

    def __init__(self, source: str, schema: Mapping[str, Mapping[str, str]], max_depth: int):
        self._source = source
        self._max_depth = max_depth
        self._messages = {
            name: {f: parse_type(t) for f, t in fields.items()} for name, fields in schema.items()
        }
        self._scopes: list[dict[str, CelType]] = []
        self._fields: set[str] = set()
        self._sites: list[Site] = []
        self._patterns: list[tuple[str, str]] = []

    def check(self, tree: Node) -> Checked:
        result = self._check(tree, 0)
        if result not in (BOOL, DYN):
            raise self._error(tree.meta.start_pos, f"a condition must give a bool, not {result}")
        return Checked(result, frozenset(self._fields), tuple(self._sites), tuple(self._patterns))

    # -- helpers

    def _error(self, pos: int, message: str) -> PolicyError:
        return PolicyError(f"{where(self._source, pos)}: {message}")

    def _text(self, node: Node) -> str:
        return self._source[node.meta.start_pos : node.meta.end_pos]

    def _apply(self, name: str, pos: int, args: list[CelType], operands: list[str]) -> CelType:
        result = resolve(name, args)
        if result is None:
            hint = "; use has() to test whether a field is set" if NULL in args else ""
            shown = ", ".join(str(a) for a in args)
            raise self._error(pos, f"no matching overload for {name} ({shown}){hint}")
        if DYN in args:
            self._sites.append(Site(name, where(self._source, pos), tuple(operands)))
        return result

    def _lookup(self, name: str) -> CelType | None:
        for scope in reversed(self._scopes):
            if name in scope:
                return scope[name]
        return None

    def _root(self, node: Node) -> str | None:
        """The schema variable ``node`` names, unless a comprehension variable hides it."""
        node = _unwrap(node, parens=True)
        if node.data != "ident":
            return None
        name = str(_token(node))
        return name if name in self._messages and self._lookup(name) is None else None

    def _field(self, target: CelType, name: str, pos: int) -> CelType:
        fields = self._messages.get(target.name)
        if fields is not None:
            if name not in fields:
                known = ", ".join(fields)
                raise self._error(pos, f"{target} has no field {name}; fields: {known}")
            return fields[name]
        if target == DYN:
            return DYN
        if target.name == "map" and target.params[0] in (STRING, DYN):
            return target.params[1]
        raise self._error(pos, f"cannot select field {name} of {target}")

    def _target(self, operand: Node, depth: int) -> CelType:
        """Type of the operand of a field selection; ``request`` there reads one field only."""
        root = self._root(operand)
        return CelType(root) if root is not None else self._check(operand, depth)

    def _selected(self, target: CelType, name: Token) -> CelType:
        if target.name in self._messages:
            self._fields.add(f"{target}.{name}")
        return self._field(target, str(name), _pos(name))

    # -- dispatch

    def _check(self, node: Node, depth: int) -> CelType:
        node = _unwrap(node)
        if depth > self._max_depth:
            message = f"expression is nested more than {self._max_depth} levels deep"
            raise self._error(node.meta.start_pos, message)
        return _HANDLERS[str(node.data)](self, node, depth + 1)

    def _binary(self, node: Node, depth: int) -> CelType:
        # ``a + b - c`` is a left-leaning chain; walk it in a loop so a long flat chain does
        # not count as deep nesting.
        steps: list[tuple[str, int, Node]] = []
        while node.data in _CHAINS and len(node.children) == 2:
            left, right = _trees(node)
            if node.data in _LOGICAL_OPS:
                name, symbol = _LOGICAL_OPS[str(node.data)]
                pos = self._source.index(symbol, left.meta.end_pos)
            else:
                name, symbol = _WRAPPED_OPS[str(left.data)]
                pos = left.meta.end_pos - len(symbol)
                left = _trees(left)[0]
            steps.append((name, pos, right))
            node = left
        start = node.meta.start_pos
        result = self._check(node, depth)
        for name, pos, right in reversed(steps):
            rtype = self._check(right, depth)
            operands = [self._source[start : pos], self._text(right)]
            result = self._apply(name, pos, [result, rtype], operands)
        return result

    def _unary_op(self, node: Node, depth: int) -> CelType:
        ops: list[tuple[str, int]] = []
        while node.data == "unary" and len(node.children) == 2:
            op, node = _trees(node)
            ops.append(("!_" if op.data == "unary_not" else "-_", op.meta.start_pos))
        result = self._check(node, depth)
        for name, pos in reversed(ops):
            operand = self._source[pos + 1 : node.meta.end_pos]
            result = self._apply(name, pos, [result], [operand])
        return result

    def _ternary(self, node: Node, depth: int) -> CelType:
        cond, a, b = _trees(node)
        types = [self._check(n, depth) for n in (cond, a, b)]
        pos = self._source.index("?", cond.meta.end_pos)
        return self._apply("_?_:_", pos, types, [self._text(n) for n in (cond, a, b)])

    def _select(self, node: Node, depth: int) -> CelType:
        operand, name = node.children
        assert isinstance(operand, Tree)
        assert isinstance(name, Token)
        return self._selected(self._target(operand, depth), name)

    def _index_op(self, node: Node, depth: int) -> CelType:
        coll, key = _trees(node)
        types = [self._check(coll, depth), self._check(key, depth)]
        pos = self._source.index("[", coll.meta.end_pos)
        return self._apply("_[_]", pos, types, [self._text(coll), self._text(key)])

    def _args(self, node: Node) -> list[Node]:
        lists = [c for c in _trees(node) if c.data == "exprlist"]
        return _trees(lists[0]) if lists else []

    def _call(self, node: Node, depth: int) -> CelType:
        name_tok = _token(node)
        name, args = str(name_tok), self._args(node)
        if name == "has":
            return self._has(node, args, depth)
        if name not in GLOBAL_FUNCTIONS:
            known = ", ".join(GLOBAL_FUNCTIONS)
            raise self._error(_pos(name_tok), f"unknown function {name}; functions: {known}")
        types = [self._check(a, depth) for a in args]
        return self._apply(name, _pos(name_tok), types, [self._text(a) for a in args])

    def _method(self, node: Node, depth: int) -> CelType:
        receiver = _trees(node)[0]
        name_tok = _token(node)
        name, args = str(name_tok), self._args(node)
        if name in MACROS:
            return self._macro(name, _pos(name_tok), receiver, args, depth)
        if name not in METHODS:
            known = ", ".join(METHODS + MACROS)
            raise self._error(_pos(name_tok), f"unknown method {name}; methods: {known}")
        operands = [receiver, *args]
        types = [self._check(a, depth) for a in operands]
        if name == "matches" and len(args) == 1:
            literal = _unwrap(args[0])
            if literal.data == "literal" and _token(literal).type in ("STRING_LIT",
                                                                      "MLSTRING_LIT"):
                self._patterns.append((where(self._source, literal.meta.start_pos),
                                       str(_token(literal))))
        return self._apply(name, _pos(name_tok), types, [self._text(a) for a in operands])

    def _has(self, node: Node, args: list[Node], depth: int) -> CelType:
        arg = _unwrap(args[0], parens=True) if len(args) == 1 else None
        if arg is None or arg.data != "member_dot":
            raise self._error(node.meta.start_pos,
                              "has() needs one field selection, such as has(request.model)")
        operand, name = arg.children
        assert isinstance(operand, Tree)
        assert isinstance(name, Token)
        target = self._target(operand, depth)
        if target.name not in self._messages and target != DYN and target.name != "map":
            raise self._error(_pos(name), f"has() cannot test a field of {target}")
        self._selected(target, name)
        return BOOL

    def _macro(self, name: str, pos: int, receiver: Node, args: list[Node],
               depth: int) -> CelType:
        arity = (2, 3) if name == "map" else (2,)
        if len(args) not in arity:
            count = " or ".join(str(n) for n in arity)
            raise self._error(pos, f"{name}() takes {count} arguments")
        var = _unwrap(args[0])
        if var.data != "ident":
            raise self._error(var.meta.start_pos,
                              f"{name}() needs a variable name as its first argument")
        target = self._check(receiver, depth)
        if target.name == "map" and name in ("map", "filter"):
            # A map's key order is not defined, so the resulting list would not be either.
            raise self._error(pos, f"{name}() over a map is not supported (keys have no order)")
        if target.name not in ("list", "map") and target != DYN:
            raise self._error(pos, f"{name}() needs a list or a map, not {target}")
        elem = target.params[0] if target.params else DYN
        self._scopes.append({str(_token(var)): elem})
        body = [(arg, self._check(arg, depth)) for arg in args[1:]]
        self._scopes.pop()
        predicates = body[:-1] if name == "map" else body
        for arg, t in predicates:
            if t not in (BOOL, DYN):
                message = f"{name}() condition must give a bool, not {t}"
                raise self._error(arg.meta.start_pos, message)
        if name == "map":
            return list_of(body[-1][1])
        return list_of(elem) if name == "filter" else BOOL

    def _ident(self, node: Node, depth: int) -> CelType:
        tok = _token(node)
        name = str(tok)
        bound = self._lookup(name)
        if bound is not None:
            return bound
        if name in self._messages:
            self._fields.update(f"{name}.{f}" for f in self._messages[name])
            return CelType(name)
        known = ", ".join(self._messages)
        raise self._error(_pos(tok), f"unknown variable {name}; variables: {known}")

    def _paren(self, node: Node, depth: int) -> CelType:
        return self._check(_trees(node)[0], depth)

    def _list(self, node: Node, depth: int) -> CelType:
        elem: CelType | None = None
        for item in self._args(node):
            t = self._check(item, depth)
            elem = t if elem is None else join(elem, t)
        return list_of(elem or DYN)

    def _map(self, node: Node, depth: int) -> CelType:
        inits = _trees(node)
        items = _trees(inits[0]) if inits else []
        key: CelType | None = None
        value: CelType | None = None
        for k_node, v_node in zip(items[::2], items[1::2], strict=True):
            k, v = self._check(k_node, depth), self._check(v_node, depth)
            if k not in MAP_KEYS:
                raise self._error(k_node.meta.start_pos,
                                  f"map keys must be int, uint, bool or string, not {k}")
            key = k if key is None else join(key, k)
            value = v if value is None else join(value, v)
        return map_of(key or DYN, value or DYN)

    def _literal(self, node: Node, depth: int) -> CelType:
        token = _token(node)
        if token.type == "UINT_LIT" and token.startswith("-"):
            # The grammar lexes a sign into numeric literals; CEL has no negative uint.
            raise self._error(_pos(token), "no matching overload for -_ (uint)")
        return _LITERALS[token.type]

    def _unsupported(self, node: Node, depth: int) -> CelType:
        what = {
            "member_object": "message construction",
            "dot_ident": "a leading-dot name",
            "dot_ident_arg": "a leading-dot name",
        }[str(node.data)]
        raise self._error(node.meta.start_pos, f"{what} is not supported")


_HANDLERS: Mapping[str, Callable[[Checker, Node, int], CelType]] = {
    "expr": Checker._ternary,
    "conditionalor": Checker._binary,
    "conditionaland": Checker._binary,
    "relation": Checker._binary,
    "addition": Checker._binary,
    "multiplication": Checker._binary,
    "unary": Checker._unary_op,
    "member_dot": Checker._select,
    "member_dot_arg": Checker._method,
    "member_index": Checker._index_op,
    "member_object": Checker._unsupported,
    "dot_ident": Checker._unsupported,
    "dot_ident_arg": Checker._unsupported,
    "ident_arg": Checker._call,
    "ident": Checker._ident,
    "paren_expr": Checker._paren,
    "list_lit": Checker._list,
    "map_lit": Checker._map,
    "literal": Checker._literal,
}

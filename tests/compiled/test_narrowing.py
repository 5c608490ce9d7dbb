"""Compiled modules hold mypy to its types, and mypy keeps an attribute narrowed across an
``await`` (``if self._error is not None: raise ...``, then ``await``, during which a
callback sets it: compiled, reading it again raises ``TypeError``). No compiled coroutine
tests the same attribute for ``None`` (or its type) both before and after an ``await``;
one that must read it again does so through a method call, which mypy does not narrow."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

from gatewayd.compiled import COMPILED

ROOT = Path(__file__).resolve().parents[2]


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _narrowed(test: ast.expr) -> list[str]:
    """The attributes (``a.b``) that ``test`` narrows: ``is``/``is not`` and isinstance."""
    found = []
    for node in ast.walk(test):
        target: ast.expr | None = None
        if isinstance(node, ast.Compare) and any(isinstance(op, ast.Is | ast.IsNot)
                                                 for op in node.ops):
            target = node.left
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id == "isinstance" and node.args):
            target = node.args[0]
        name = None if target is None else _dotted(target)
        if name is not None and "." in name:
            found.append(name)
    return found


def narrowed_across_awaits(source: str) -> list[str]:
    """``function: attribute (lines)`` for each attribute a coroutine narrows on both sides
    of an ``await``."""
    out = []
    for fn in ast.walk(ast.parse(source)):
        if not isinstance(fn, ast.AsyncFunctionDef):
            continue
        awaits = [n.lineno for n in ast.walk(fn) if isinstance(n, ast.Await)]
        tested: dict[str, set[int]] = {}
        for node in ast.walk(fn):
            if isinstance(node, ast.If | ast.While | ast.IfExp | ast.Assert):
                for name in _narrowed(node.test):
                    tested.setdefault(name, set()).add(node.lineno)
        for name, lines in sorted(tested.items()):
            ordered = sorted(lines)
            for first, then in itertools.pairwise(ordered):
                if any(first < line < then for line in awaits):
                    out.append(f"{fn.name}: {name} ({first}, {then})")
    return out


def test_the_check_finds_the_pattern() -> None:
    source = ("async def recv(self):\n"
              "    if self._error is not None:\n"
              "        raise self._error\n"
              "    await self._waiter\n"
              "    if self._error is not None:\n"
              "        raise self._error\n")
    assert narrowed_across_awaits(source) == ["recv: self._error (2, 5)"]
    through_a_call = source.replace("await self._waiter\n    if self._error",
                                    "await self._waiter\n    if self._failure()")
    assert narrowed_across_awaits(through_a_call) == []


@pytest.mark.parametrize(("package", "module"), [
    (package, module) for package, modules in COMPILED.items() for module in modules])
def test_no_compiled_coroutine_narrows_an_attribute_across_an_await(package: str,
                                                                    module: str) -> None:
    path = ROOT / package.replace(".", "/") / f"{module}.py"
    assert narrowed_across_awaits(path.read_text()) == []

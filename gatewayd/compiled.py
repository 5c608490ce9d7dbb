"""Modules compiled ahead of time with mypyc, used only while they match their source.

Two of the gateway's Python loops run per inspected request. The DLP scanner turns a few
dozen pattern hits per kilobyte into matches (validators, cues, overlaps, encoded runs);
compiled by mypyc, the compiler that ships with mypy, from the same type-checked source,
it takes about 30% less time (``tools/bench/dlp.py`` says which ran). The L7 request path
(byte streams, HTTP/1.1 framing, the pipeline of one connection, the decision and its
record) costs the engine about 5% less CPU a request compiled (its user time, 15% less),
and the engine serves about 7% more requests at saturation (``tools/bench/l7.py``).

Compiled code holds mypy to its word: a value of a type other than the one mypy inferred
is a ``TypeError`` where Python would go on. Where this bites is the narrowing of an
attribute: mypy keeps ``self._error`` narrowed to ``None`` after ``if self._error is not
None: raise ...`` even across an ``await`` during which a callback sets it, so such an
attribute is read again through a method call (``tests/compiled`` looks for the pattern).

Where Python objects themselves are the cost (a loop over bytes, a callback per pattern
hit), compiling the same source cannot remove them; such a module has a C twin
(``C_TWINS``): ``{module}.c`` beside ``{module}.py``, the same function in C, built with
the compiled modules and chosen by the same rule. The Python module stays the reference
(what runs when nothing was built, and what the tests hold the twin to).

``python -m tools.native`` (run by ``tools/setup.sh``) compiles the modules ``COMPILED``
lists, and the C twins, into a ``_native`` folder inside their package, with a record of
what they were built from: the SHA-256 of each of the package's sources (the compiled
modules, those they import, and the C twins' sources) and the interpreter's extension
suffix (and mypy's
version, for the build to know when to compile again). The package calls ``use_compiled``
before importing them: the folder goes ahead of the package's own on its ``__path__``
only when that record still holds, so an edited source, another interpreter or a build
that never happened (no C compiler) means the Python modules run — the same code,
slower — never a stale compiled one. With ``CLAWGRESS_PURE_PYTHON=1`` in the environment
the Python modules always run.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
import logging
import os
from collections.abc import MutableSequence
from pathlib import Path

COMPILED: dict[str, tuple[str, ...]] = {
    "gatewayd.dlp": ("carriers", "engine", "findings", "match", "scanner", "segments",
                     "validators"),
    "gatewayd.l7": ("conn", "connection", "exchange", "http1", "responses", "target",
                    "upstream"),
}
# Modules that have a C twin: ``{module}.c`` beside ``{module}.py``, the same function in
# C (where Python objects are the cost, not the logic), built with the package's compiled
# modules into the same folder, and the libraries it links. The Python module is the
# reference, and what runs when the build did not happen.
C_TWINS: dict[str, dict[str, tuple[str, ...]]] = {
    "gatewayd.dlp": {"entropy": ("m",), "hits": ("hs",), "runs": ()},
}
NATIVE_DIR = "_native"
GROUP = "_compiled"  # the compiled modules' shared library: {package}.{GROUP}__mypyc
RECORD = "built-from.json"
PURE_ENV = "CLAWGRESS_PURE_PYTHON"

# What runs, per package: "compiled", or "python" and why.
STATUS: dict[str, str] = {}


def extension_suffix() -> str:
    return importlib.machinery.EXTENSION_SUFFIXES[0]


def source_digests(package_dir: Path) -> dict[str, str]:
    """The SHA-256 of the source of every module of the package, by module name: the
    compiled ones and those they were compiled against (their types and constants); and
    of every C twin's source, by its file name (``runs.c``)."""
    digests = {p.stem: hashlib.sha256(p.read_bytes()).hexdigest()
               for p in sorted(package_dir.glob("*.py"))}
    digests.update((p.name, hashlib.sha256(p.read_bytes()).hexdigest())
                   for p in sorted(package_dir.glob("*.c")))
    return digests


def native_modules(package: str) -> tuple[str, ...]:
    """The modules a build of ``package`` puts in its ``_native`` folder."""
    return (*COMPILED.get(package, ()), *C_TWINS.get(package, {}), f"{GROUP}__mypyc")


def build_record(package_dir: Path, mypy_version: str) -> dict[str, object]:
    """What a build of ``package_dir`` records; ``use_compiled`` checks all of it but the
    mypy version (there for the build to know when to compile again)."""
    return {"extension_suffix": extension_suffix(), "mypy": mypy_version,
            "sources": source_digests(package_dir)}


def report(log: logging.Logger, what: str, package: str) -> None:
    """Log how ``package`` runs: compiled, or as Python because that was asked for (info),
    or as Python for another reason (a warning: correct, and slower; someone should know)."""
    runs = STATUS.get(package, "python")
    if runs == "compiled" or PURE_ENV in runs:
        log.info("%s: %s", what, runs)
    else:
        log.warning("%s: %s; `python -m tools.native` compiles it", what, runs)


def use_compiled(package: str, path: MutableSequence[str]) -> str:
    """Put ``package``'s compiled modules ahead of its Python ones on ``path`` (its
    ``__path__``) if they were built from its sources as they are now; say what runs."""
    status = _compiled_dir(package, path)
    if isinstance(status, Path):
        path.insert(0, str(status))
        STATUS[package] = "compiled"
    else:
        STATUS[package] = f"python ({status})"
    return STATUS[package]


def _compiled_dir(package: str, path: MutableSequence[str]) -> Path | str:
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        return f"{PURE_ENV} is set"
    modules = COMPILED.get(package)
    if modules is None or not path:
        return "not a compiled package"
    package_dir = Path(path[0])
    native = package_dir / NATIVE_DIR
    try:
        record = json.loads((native / RECORD).read_text())
    except FileNotFoundError:
        return "not compiled: see tools/native.py"
    except (OSError, ValueError) as exc:
        return f"unreadable build record: {exc}"
    if not isinstance(record, dict) or record.get("extension_suffix") != extension_suffix():
        return "compiled for another interpreter"
    try:
        now = source_digests(package_dir)
    except OSError as exc:
        return f"a source is unreadable: {exc}"
    then = record.get("sources")
    if now != then:
        then = then if isinstance(then, dict) else {}
        changed = sorted(m for m, digest in now.items() if then.get(m) != digest)
        return f"changed since compiled: {', '.join(changed) or 'the module list'}"
    suffix = extension_suffix()
    if not all((native / f"{m}{suffix}").is_file() for m in native_modules(package)):
        return "a compiled module is missing"
    return native

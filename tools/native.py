"""Compile the modules ``gatewayd.compiled.COMPILED`` lists with mypyc, and the C twins
``C_TWINS`` lists with the C compiler, each package's into its ``_native`` folder (see
``gatewayd/compiled.py`` for why and how they are chosen).

Run by ``tools/setup.sh`` (``make setup``, and so by ``make test`` and ``make demo``):
nothing to do when the compiled modules were built from the sources as they are, with
this interpreter and this mypy. A build takes 20 to 40 s a package. It needs a C compiler and
Python's headers (``gcc`` and ``python3-dev`` in ``tools/debian-packages.txt``); when it
fails, the reason is printed, nothing half-built is left in place, the exit status is 1,
and the Python modules run.

Usage: ``python -m tools.native`` (build what is out of date), ``--force`` (build anyway),
``--clean`` (remove the compiled modules: the Python ones run).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from gatewayd.compiled import (
    C_TWINS,
    COMPILED,
    GROUP,
    NATIVE_DIR,
    RECORD,
    build_record,
    extension_suffix,
    native_modules,
)

ROOT = Path(__file__).resolve().parent.parent


def mypy_version() -> str:
    from mypy.version import __version__  # noqa: PLC0415 - only when building

    return __version__


def wanted(package: str) -> dict[str, object]:
    return build_record(ROOT / package.replace(".", "/"), mypy_version())


def current(package: str) -> object:
    try:
        return json.loads((ROOT / package.replace(".", "/") / NATIVE_DIR / RECORD).read_text())
    except (OSError, ValueError):
        return None


def build(package: str, modules: tuple[str, ...], record: dict[str, object]) -> None:
    """Compile ``modules`` of ``package`` in a scratch folder; install them all, with their
    record last, or nothing."""
    from mypyc.build import mypycify  # noqa: PLC0415 - only when building
    from setuptools import Distribution, Extension  # noqa: PLC0415

    package_dir = ROOT / package.replace(".", "/")
    native = package_dir / NATIVE_DIR
    sources = [str((package_dir / f"{m}.py").relative_to(ROOT)) for m in modules]
    with tempfile.TemporaryDirectory(prefix="clawgress-native-") as scratch:
        work = Path(scratch)
        log = io.StringIO()
        cwd = os.getcwd()
        os.chdir(ROOT)  # mypy names the modules after their paths from here
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                extensions = mypycify(sources, opt_level="3", group_name=f"{package}.{GROUP}",
                                      target_dir=str(work / "c"))
                for twin, libraries in C_TWINS.get(package, {}).items():
                    extensions.append(Extension(
                        f"{package}.{twin}",
                        [str((package_dir / f"{twin}.c").relative_to(ROOT))],
                        libraries=list(libraries),
                        extra_compile_args=["-O2", "-Wall", "-Wextra"]))
                # Not setuptools.setup(): that would read pyproject.toml as a project to
                # install. Only the extensions are built, outside the source tree.
                dist = Distribution({"name": "clawgress-native", "ext_modules": extensions})
                command = dist.get_command_obj("build_ext")
                command.build_lib = str(work / "lib")  # type: ignore[attr-defined]
                command.build_temp = str(work / "tmp")  # type: ignore[attr-defined]
                dist.run_command("build_ext")
        except (Exception, SystemExit) as exc:  # any failure: say it; the Python modules run
            tail = "\n".join(log.getvalue().strip().splitlines()[-15:])
            raise RuntimeError(f"{type(exc).__name__}: {exc}\n{tail}") from None
        finally:
            os.chdir(cwd)
        built = work / "lib" / package.replace(".", "/")
        suffix = extension_suffix()
        staged = native.with_name(f"{NATIVE_DIR}.new")
        shutil.rmtree(staged, ignore_errors=True)
        staged.mkdir()
        for name in native_modules(package):
            shutil.copy2(built / f"{name}{suffix}", staged / f"{name}{suffix}")
        (staged / RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        shutil.rmtree(native, ignore_errors=True)
        staged.rename(native)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--force", action="store_true", help="compile even when up to date")
    ap.add_argument("--clean", action="store_true",
                    help="remove the compiled modules (the Python ones run)")
    args = ap.parse_args(argv)
    failed = 0
    for package, modules in COMPILED.items():
        native = ROOT / package.replace(".", "/") / NATIVE_DIR
        if args.clean:
            shutil.rmtree(native, ignore_errors=True)
            print(f"native: {package}: compiled modules removed", file=sys.stderr)
            continue
        record = wanted(package)
        if not args.force and current(package) == record:
            continue
        twins = len(C_TWINS.get(package, {}))
        also = f" and {twins} C twin{'s' if twins > 1 else ''}" if twins else ""
        print(f"native: {package}: compiling {len(modules)} modules with mypyc"
              f" {record['mypy']}{also} (20 to 40 s)", file=sys.stderr)
        started = time.monotonic()
        try:
            build(package, modules, record)
        except RuntimeError as exc:
            print(f"native: {package}: compiling failed; its Python modules run.\n{exc}",
                  file=sys.stderr)
            failed += 1
            continue
        print(f"native: {package}: compiled in {time.monotonic() - started:.0f} s",
              file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

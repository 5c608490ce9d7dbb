"""The DLP scanner compiled (what ``make setup`` builds and the gateway runs) finds exactly
what its Python source finds: the same matches, spans, confidences and bounds, on the
labelled corpus and on bodies built to be awkward."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gatewayd import compiled
from gatewayd.dlp import Scanner

ROOT = Path(__file__).resolve().parents[2]

# Scans a small corpus (and a few adversarial bodies) and prints what was found, as JSON.
SCAN = """
import json, sys
from gatewayd import compiled
from gatewayd.dlp import Scanner
from tests.dlp.corpus import build_corpus
from tools.bench.dlp import ADVERSARIAL
bodies = [(s.body, s.content_type) for s in build_corpus(per_class=6, negatives_count=80)]
bodies += [(unit * (65536 // len(unit)), "text/plain") for unit in ADVERSARIAL]
out = []
for config in ({}, {"max_hits": 40, "max_carriers": 3, "min_confidence": 0.7}):
    scanner = Scanner.from_files(**config)
    for body, ct in bodies:
        f = scanner.scan(body, content_type=ct)
        out.append([[list(m) for m in f.matches], f.complete, f.limit,
                    [list(p) for p in f.placed]])
print(json.dumps({"status": compiled.STATUS["gatewayd.dlp"], "found": out}))
"""


def _scan(pure: bool) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != compiled.PURE_ENV}
    if pure:
        env[compiled.PURE_ENV] = "1"
    done = subprocess.run([sys.executable, "-c", SCAN], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True, timeout=300)
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_the_scanner_runs_compiled(scanner: Scanner) -> None:
    """``make setup`` compiles it; a failed or stale build shows here, not as a slow gateway."""
    assert compiled.STATUS["gatewayd.dlp"] == "compiled", (
        f"the DLP modules run as Python: {compiled.STATUS['gatewayd.dlp']};"
        " run `python -m tools.native` (make setup)")


def test_compiled_and_python_find_the_same() -> None:
    native, python = _scan(pure=False), _scan(pure=True)
    assert python["status"] == f"python ({compiled.PURE_ENV} is set)"
    assert native["status"] == "compiled"
    assert native["found"] == python["found"]
    assert any(found[0] for found in python["found"])  # the corpus has matches to compare


def test_the_gateway_says_how_its_scanner_runs(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The DLP stage logs it when it starts: compiled (info), or Python and why (a warning,
    unless asked for)."""
    from gatewayd.l7.dlp_stage import DlpStage  # noqa: PLC0415 - the L7 side, here only

    caplog.set_level(logging.INFO, logger="clawgress.dlp")
    DlpStage.configured([], 0.5, tmp_path / "dlp.key", "deny")
    assert ("clawgress.dlp", logging.INFO, "DLP scanner: compiled") in caplog.record_tuples
    caplog.clear()
    monkeypatch.setitem(compiled.STATUS, "gatewayd.dlp", "python (changed since compiled: x)")
    DlpStage.configured([], 0.5, tmp_path / "dlp.key", "deny")
    assert caplog.record_tuples == [
        ("clawgress.dlp", logging.WARNING, "DLP scanner: python (changed since compiled: x);"
         " `python -m tools.native` compiles it")]

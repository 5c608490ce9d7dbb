"""Shared reporting for the benchmarks: machine facts, the table, the JSON file, the verdict.

Every benchmark prints a readable table and writes ``bench-results/NAME.json`` in the
format ``../shared/BENCHMARKS.md`` gives; a figure with an ``expected`` goal that is missed
makes the run exit non-zero.
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[2] / "bench-results"


@dataclass
class Figure:
    value: float
    unit: str
    expected: str | None = None
    spread: tuple[float, float] | None = None

    def met(self) -> bool | None:
        if self.expected is None:
            return None
        m = re.fullmatch(r"\s*(<=|>=|==|<|>)\s*([0-9.]+)\s*", self.expected)
        if not m:
            raise ValueError(f"cannot read expected {self.expected!r}")
        op, bound = m.group(1), float(m.group(2))
        return {"<=": self.value <= bound, ">=": self.value >= bound,
                "==": self.value == bound, "<": self.value < bound,
                ">": self.value > bound}[op]


@dataclass
class Report:
    benchmark: str
    figures: dict[str, Figure] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, name: str, value: float, unit: str, expected: str | None = None,
            spread: tuple[float, float] | None = None) -> None:
        self.figures[name] = Figure(value, unit, expected, spread)

    def finish(self) -> int:
        """Print, write the JSON, and return the exit code (1 if a goal was missed)."""
        width = max(len(n) for n in self.figures)
        print(f"\n{self.benchmark}: {len(self.figures)} figures")
        print(f"{'figure'.ljust(width)}  {'value':>12}  unit  {'spread (min-max of rounds)':>28}"
              "  expected   ok")
        missed = []
        for name, fig in self.figures.items():
            spread = f"{fig.spread[0]:.3g}-{fig.spread[1]:.3g}" if fig.spread else ""
            met = fig.met()
            ok = "" if met is None else ("yes" if met else "NO")
            if met is False:
                missed.append(name)
            print(f"{name.ljust(width)}  {fig.value:12.4g}  {fig.unit:4}  {spread:>28}"
                  f"  {fig.expected or '':9}  {ok}")
        for note in self.notes:
            print(f"note: {note}")
        RESULTS.mkdir(exist_ok=True)
        out = {
            "benchmark": self.benchmark,
            "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "machine": machine(),
            "figures": {
                name: {k: v for k, v in {
                    "value": round(fig.value, 4), "unit": fig.unit, "expected": fig.expected,
                    "spread": [round(s, 4) for s in fig.spread] if fig.spread else None,
                }.items() if v is not None}
                for name, fig in self.figures.items()
            },
            "notes": self.notes,
        }
        path = RESULTS / f"{self.benchmark}.json"
        path.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {path}")
        if missed:
            print(f"MISSED: {', '.join(missed)}", file=sys.stderr)
            return 1
        return 0


def machine() -> dict[str, object]:
    return {
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def median(values: list[float]) -> float:
    return statistics.median(values)

#!/usr/bin/env bash
# The whole test suite: lint, strict typing, unit and netns tests. Exits non-zero on any
# failure, including a pytest run that collected no tests (pytest's exit code 5).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv=.venv/bin

echo "== ruff"
"$venv/ruff" check gatewayd tests netns-tests tools
echo "== mypy --strict gatewayd"
"$venv/mypy" --strict gatewayd
echo "== pytest"
# Exit code 5 ("no tests collected") is a failure here, like any other non-zero code.
"$venv/python" -m pytest "$@"

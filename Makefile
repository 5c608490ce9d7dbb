# The two commands of the README's quick start, and the pieces they are made of.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test lint typecheck bench clean

setup:
	@bash tools/setup.sh

demo: setup
	@$(PY) -m tools.demo

test: setup
	@bash tools/test.sh

lint: setup
	@$(VENV)/bin/ruff check gatewayd tests netns-tests tools

typecheck: setup
	@$(VENV)/bin/mypy --strict gatewayd

bench: setup
	@$(PY) -m pip install -q -e '.[dev,bench]'
	@$(PY) -m tools.bench.policy
	@$(PY) -m tools.bench.dataplane
	@$(PY) -m tools.bench.l7
	@$(PY) -m tools.bench.ai
	@$(PY) -m tools.bench.dlp

clean:
	rm -rf $(VENV) bench-results/*.json .pytest_cache .mypy_cache .ruff_cache

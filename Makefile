# The two commands of the README's quick start, and the pieces they are made of.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test lint typecheck unit bench clean

setup:
	@bash tools/setup.sh

demo: setup
	@$(PY) -m tools.demo

test: setup
	@bash tools/test.sh

lint: setup
	@$(VENV)/bin/ruff check gatewayd tests tools

typecheck: setup
	@$(VENV)/bin/mypy --strict gatewayd

bench: setup
	@$(PY) -m tools.bench.policy

clean:
	rm -rf $(VENV) bench-results/*.json .pytest_cache .mypy_cache .ruff_cache

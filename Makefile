PY ?= .venv/bin/python

.PHONY: setup demo test test-fast bench lint

setup:
	bash scripts/setup.sh

demo: setup
	$(PY) -m experiments demo

test:
	$(PY) -m pytest

test-fast:
	$(PY) -m pytest -m "not slow and not browser"

bench:
	$(PY) -m benchmarks all

lint:
	$(PY) -m ruff check .

PY ?= .venv/bin/python

.PHONY: setup demo test test-fast bench gpu-check lint

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

# On a CUDA machine, at most 8 minutes: docs/gpu-check.md
gpu-check:
	$(PY) -m benchmarks.gpu_check --device cuda $(GPU_CHECK_ARGS)

lint:
	$(PY) -m ruff check .

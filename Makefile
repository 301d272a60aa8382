PY ?= .venv/bin/python
# Test processes (pytest-xdist); a module's tests stay on one worker (tests/conftest.py).
TEST_WORKERS ?= 2

.PHONY: setup demo test test-fast bench gpu-check lint

setup:
	bash scripts/setup.sh

demo: setup
	$(PY) -m experiments demo

test:
	$(PY) -m pytest -n $(TEST_WORKERS)

test-fast:
	$(PY) -m pytest -m "not slow and not browser"

bench:
	$(PY) -m benchmarks all

# On a CUDA machine, at most 8 minutes: docs/gpu-check.md
gpu-check:
	$(PY) -m benchmarks.gpu_check --device cuda $(GPU_CHECK_ARGS)

lint:
	$(PY) -m ruff check .

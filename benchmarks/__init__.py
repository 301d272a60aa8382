"""Benchmarks: `python -m benchmarks all` (or `make bench`); each writes its figures to BENCHMARKS.md."""

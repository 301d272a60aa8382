"""The analysis benchmark runs end to end at a tiny scale (its naive loops check its results)."""

from __future__ import annotations

import pytest

from benchmarks import bench_analysis


@pytest.mark.slow
def test_benchmark_runs_at_tiny_scale(capsys):
    rc = bench_analysis.main(["--scale", "0.002", "--n-boot", "50", "--ceiling-repeats", "3",
                              "--no-write"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "whole report" in out and "speed-up" in out

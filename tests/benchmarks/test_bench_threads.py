"""`python -m benchmarks threads`: the table and the reading come from the measured runs (the
training runs themselves are replaced here by fixed figures)."""

from __future__ import annotations

from benchmarks import bench_threads


def test_section_from_the_runs(monkeypatch, capsys):
    rates = {(1, False): 320.0, (2, False): 64.0, (1, True): 384.0, (2, True): None}
    calls = []

    def fake(config, steps, threads, passive, out, timeout_s):
        calls.append((threads, passive))
        rate = rates[(threads, passive)]
        return {"images_per_s": rate, "wall_s": None if rate is None else 10.0, "load": 1.5}

    monkeypatch.setattr(bench_threads, "run_once", fake)
    assert bench_threads.main(["--no-write", "--rounds", "2", "--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert calls == [(1, False), (2, False), (1, True), (2, True)] * 2  # alternating rounds
    assert "| 1 | not set | 5.0, 5.0 | 5.0 | 10 | 1.5-1.5 |" in out  # 320 images/s / batch 64
    assert "| 2 | PASSIVE | timeout, timeout | - | > 240 | 1.5-1.5 |" in out
    assert "Fastest here: 1 thread(s), OMP_WAIT_POLICY PASSIVE (6.0 steps/s)." in out
    assert "5.0x the steps/s" in out
    assert "--steps 3 --rounds 2" in out

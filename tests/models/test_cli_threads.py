"""`python -m models train|sample|classifier|attribute` run on DEFAULT_THREADS torch CPU threads
unless --threads or OMP_NUM_THREADS asks otherwise (one thread measured fastest: BENCHMARKS.md,
section threads)."""

from __future__ import annotations

import pytest
import torch

from models import cli


@pytest.fixture
def seen(monkeypatch):
    got = {}
    before = torch.get_num_threads()

    def fake(args):
        got["threads"] = torch.get_num_threads()
        return 0

    monkeypatch.setattr(cli, "_train", fake)
    monkeypatch.setattr(cli, "_sample", fake)
    monkeypatch.setattr(cli, "_delegate", lambda name, argv: fake(argv))
    yield got
    torch.set_num_threads(before)


def test_default_is_one_thread(monkeypatch, seen):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(2)
    assert cli.DEFAULT_THREADS == 1
    assert cli.main(["train", "c.toml"]) == 0
    assert seen["threads"] == 1
    torch.set_num_threads(2)
    assert cli.main(["sample", "c.pt", "--out", "o"]) == 0
    assert seen["threads"] == 1
    for delegate in ("classifier", "attribute"):
        torch.set_num_threads(2)
        assert cli.main([delegate, "--help"]) == 0
        assert seen["threads"] == 1


def test_option_then_environment(monkeypatch, seen):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert cli.main(["train", "c.toml"]) == 0
    assert seen["threads"] == 2
    assert cli.main(["train", "c.toml", "--threads", "1"]) == 0
    assert seen["threads"] == 1
    assert cli.main(["classifier", "nway"]) == 0
    assert seen["threads"] == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "nonsense")
    assert cli.cpu_threads(None) == cli.DEFAULT_THREADS


def test_bad_threads_is_one_line(capsys):
    assert cli.main(["train", "c.toml", "--threads", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --threads: must be >= 1"

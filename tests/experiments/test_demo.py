"""The demo builds everything with --no-serve, and a second run reuses what the first built."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.experiments.conftest import run_cli, served_trial_settings

# The first test to need the shared cache trains the tiny models: minutes on a quiet 2-core
# machine, longer on a loaded one, hence more than pyproject's 600 s per-test timeout.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture(autouse=True)
def _no_omniglot_at_hand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests check the default demo: the embedded digits, as on a machine without Omniglot."""
    monkeypatch.delenv("DP_OMNIGLOT_DIR", raising=False)
    monkeypatch.setenv("DP_DATA_CACHE", str(tmp_path / "empty-data-cache"))


def test_demo_builds_then_reuses(tiny_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "demo"
    assert run_cli("demo", "--no-serve", "--root", str(root), "--cache", str(tiny_cache), "--device", "cpu") == 0
    first = capsys.readouterr()
    assert "/s/demo-clickme" in first.out and "/s/demo-realfake" in first.out
    assert "data: embedded digits (no Omniglot in " in first.out
    assert "/researcher/" in first.out
    creds = json.loads((root / "researcher.json").read_text())
    assert creds["password"] in first.out
    assert "created" in first.err
    db = root / "study.db"
    assert db.is_file()
    checkpoints = sorted(p.stat().st_mtime_ns for p in tiny_cache.rglob("*.pt"))
    # The demo serves ClickMe with its feedback classifier on.
    assert served_trial_settings(root / "server_env.json", "demo-clickme")["feedback"] is True

    assert run_cli("demo", "--no-serve", "--root", str(root), "--cache", str(tiny_cache), "--device", "cpu") == 0
    second = capsys.readouterr()
    assert "reusing" in second.err and "training" not in second.err
    assert "study demo-clickme: reused" in second.err and "study demo-realfake: reused" in second.err
    assert creds["password"] in second.out  # the same login is printed again
    assert sorted(p.stat().st_mtime_ns for p in tiny_cache.rglob("*.pt")) == checkpoints


def test_demo_bad_port() -> None:
    assert run_cli("demo", "--no-serve", "--port", "70000") == 2

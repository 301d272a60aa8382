"""Shared fixtures: one cache of tiny trained models and stimuli for every pipeline test, and
the pipelines' run folders, each made once per test session."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from experiments.cli import main
from experiments.server import serve


def run_cli(*args: str) -> int:
    """`python -m experiments ...` in-process (no progress bars)."""
    return main([*args, "--no-progress"])


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Trained tiny models, stimuli and critics, shared by every pipeline test."""
    return tmp_path_factory.mktemp("experiments-cache")


def _run(name: str, cache: Path, out: Path, seed: int = 0) -> Path:
    code = run_cli("run", name, "--profile", "tiny", "--cache", str(cache), "--out", str(out),
                   "--seed", str(seed), "--device", "cpu")
    assert code == 0, f"experiments run {name} exited with {code}"
    return out


def metrics_of(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


@pytest.fixture(scope="session")
def artist_run(tiny_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run("artist", tiny_cache, tmp_path_factory.mktemp("artist") / "run")


@pytest.fixture(scope="session")
def facade_run(tiny_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run("facade", tiny_cache, tmp_path_factory.mktemp("facade") / "run")


@pytest.fixture(scope="session")
def study_run(tiny_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run("study", tiny_cache, tmp_path_factory.mktemp("study") / "run")


def served_trial_settings(env_file: Path, slug: str) -> dict:
    """Serve a run's studies with gunicorn from the environment the run saved, start one
    participant of `slug` over the HTTP API and return its first trial's settings."""
    env = json.loads(env_file.read_text())
    with serve(env, workers=1) as url:
        start = httpx.post(f"{url}/api/v1/studies/{slug}/participants",
                           json={"platform": "direct", "consent": True}, timeout=30)
        assert start.status_code == 201, start.text
        trial = httpx.get(f"{url}/api/v1/participant/trial", timeout=30,
                          headers={"X-Participant-Token": start.json()["token"]})
        assert trial.status_code == 200, trial.text
        return trial.json()["trial"]["settings"]

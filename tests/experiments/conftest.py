"""Shared fixtures: one cache of tiny trained models and stimuli for every pipeline test, and
the pipelines' run folders, each made once per test session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.cli import main


def run_cli(*args: str) -> int:
    """`python -m experiments ...` in-process (no progress bars)."""
    return main([*args, "--quiet"])


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

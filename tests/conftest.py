"""Shared test fixtures: paths to real data and external services."""

from __future__ import annotations

import os
from pathlib import Path

# Torch's OpenMP threads spin while they wait; on a shared 2-core machine that made training
# 3-8x slower (BENCHMARKS.md, experiments). Set before any test imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest

ROOT = Path(__file__).resolve().parent.parent
OMNIGLOT_DIR = ROOT.parent / "shared" / "data" / "omniglot"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def omniglot_dir() -> Path:
    """The real Omniglot zips from ../shared; tests that need them skip clearly without them."""
    path = Path(os.environ.get("DP_OMNIGLOT_DIR", OMNIGLOT_DIR))
    if not (path / "images_background_small1.zip").exists():
        pytest.skip(f"Omniglot data not found at {path} (set DP_OMNIGLOT_DIR)")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A PostgreSQL URL from DP_TEST_POSTGRES_URL; a set but unreachable server fails the test."""
    url = os.environ.get("DP_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("DP_TEST_POSTGRES_URL not set (bash .ci/run starts a server and sets it)")
    return url

"""A SQLite database in a folder that does not exist yet: the folder is made on first use (a
fresh clone's `python -m study db-upgrade`, or DATABASE_URL naming a new folder)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from study.config import build_config, configured_database_url, default_database_url
from study.db import make_engine

ROOT = Path(__file__).resolve().parents[2]


def test_make_engine_makes_the_folder(tmp_path):
    path = tmp_path / "new" / "dir" / "study.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
    engine.dispose()
    assert path.exists()


def test_db_upgrade_into_a_new_folder(tmp_path):
    path = tmp_path / "a" / "b" / "study.db"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}", "SECRET_KEY": "k"}
    proc = subprocess.run([sys.executable, "-m", "study", "db-upgrade"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert path.exists() and "Traceback" not in proc.stderr


def test_an_empty_database_url_means_the_default_everywhere(tmp_path, monkeypatch):
    """DATABASE_URL= (set but empty, as a blank line in an env file gives) is the default SQLite
    file for the app, `study serve` and `study.migrate upgrade` alike, never an empty URL."""
    monkeypatch.setenv("DATABASE_URL", "")
    monkeypatch.setenv("SECRET_KEY", "k")
    assert configured_database_url() == default_database_url()
    assert build_config(tmp_path)["DATABASE_URL"] == default_database_url()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    assert build_config(tmp_path)["DATABASE_URL"] == configured_database_url() == f"sqlite:///{tmp_path / 'x.db'}"

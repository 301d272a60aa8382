"""gunicorn.conf.py: worker and thread counts by database, as gunicorn itself reads them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from study.config import PROJECT_ROOT, server_concurrency


def test_sqlite_gets_single_threaded_workers_postgres_threads() -> None:
    assert server_concurrency("sqlite:///data/study.db", 2) == (8, 1)
    assert server_concurrency("postgresql://u:p@h/db", 2) == (4, 4)
    assert server_concurrency("postgresql+psycopg://u:p@h/db", 16) == (32, 4)
    assert server_concurrency("sqlite://", 0) == (4, 1)  # cpu_count() may say nothing


def _printed(env: dict[str, str], cwd: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in ("WEB_CONCURRENCY", "GUNICORN_THREADS")}
    out = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", str(PROJECT_ROOT / "gunicorn.conf.py"),
         "--chdir", str(PROJECT_ROOT), "--print-config", "wsgi:app"],
        env={**base, **env}, cwd=cwd, capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    return {k.strip(): v.strip() for k, _, v in (line.partition("=") for line in out.splitlines()) if v}


@pytest.mark.parametrize(("url", "threads"), [("sqlite:////tmp/x.db", "1"), ("postgresql://u:p@h/db", "4")])
def test_gunicorn_reads_the_choice(tmp_path: Path, url: str, threads: str) -> None:
    cfg = _printed({"DATABASE_URL": url}, tmp_path)
    assert cfg["worker_class"] == "gthread" and cfg["threads"] == threads
    assert int(cfg["workers"]) == server_concurrency(url, os.cpu_count() or 1)[0]
    assert _printed({"DATABASE_URL": url, "WEB_CONCURRENCY": "3", "GUNICORN_THREADS": "2"}, tmp_path)["workers"] == "3"

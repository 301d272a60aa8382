"""How the app is served: worker and thread counts by database (as gunicorn.conf.py gives them to
gunicorn), the server command lines of study.serving, and `python -m study serve` serving."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from study.config import PROJECT_ROOT, server_concurrency
from study.serving import SERVERS, default_sizing, server_command


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


@pytest.mark.parametrize("server", SERVERS)
def test_server_command_carries_the_sizing(server: str, tmp_path: Path) -> None:
    argv = server_command(server, "127.0.0.1", 8123, 3, 2, root=tmp_path)
    assert argv[-1] == "wsgi:app" and Path(argv[0]).name == server
    text = " ".join(argv)
    if server == "granian":
        assert "--interface wsgi" in text and "--workers 3" in text and "--blocking-threads 2" in text
        assert "--port 8123" in text and "--respawn-failed-workers" in text and f"--working-dir {tmp_path}" in text
        assert "--no-access-log" in text and "--access-log" in server_command(server, "h", 1, 1, 1, access_log=True)
    else:
        assert "-w 3" in text and "--threads 2" in text and "-b 127.0.0.1:8123" in text
        assert f"--chdir {tmp_path}" in text and "-k gthread" in text
        assert "--access-logfile" not in text and "--access-logfile" in server_command(server, "h", 1, 1, 1, access_log=True)


def test_server_command_refuses_unknown_servers_and_sizes() -> None:
    with pytest.raises(ValueError, match="server: 'waitress'"):
        server_command("waitress", "127.0.0.1", 8000, 1, 1)
    with pytest.raises(ValueError, match="workers and threads"):
        server_command("granian", "127.0.0.1", 8000, 0, 1)


def test_default_sizing_follows_the_database() -> None:
    assert default_sizing("sqlite:////tmp/x.db", 2) == (8, 1)
    assert default_sizing("postgresql://u:p@h/db", 2) == (4, 4)


@pytest.mark.parametrize("server", SERVERS)
def test_study_serve_serves_until_sigterm(tmp_path: Path, server: str) -> None:
    """`python -m study serve` becomes the server (exec): it answers /healthz and the API, and
    SIGTERM to the pid that was started stops it."""
    import signal
    import time

    import httpx

    from benchmarks.servers import free_port, make_study, server_env

    url = f"sqlite:///{tmp_path / 'study.db'}"
    make_study(url, tmp_path, trials=2, task="realfake", slug="served")
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "study", "serve", "--port", str(port), "--server", server,
                             "--workers", "1", "--threads", "2"], cwd=tmp_path, env=server_env(url, tmp_path),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base, deadline, res = f"http://127.0.0.1:{port}", time.monotonic() + 60, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                res = httpx.post(f"{base}/api/v1/studies/served/participants", json={"consent": True}, timeout=5)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert res is not None and res.status_code == 201, (tmp_path / "serve.log").read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    text = (tmp_path / "serve.log").read_text()
    assert f"serving on http://127.0.0.1:{port} with {server} (1 worker process(es) x 2 thread(s))" in text


def test_study_serve_refuses_a_bad_option() -> None:
    out = subprocess.run([sys.executable, "-m", "study", "serve", "--server", "waitress"], cwd=PROJECT_ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--server" in out.stderr and "Traceback" not in out.stderr


def test_study_serve_refuses_a_database_without_the_schema(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}", "SECRET_KEY": "x",
           "STUDY_INSTANCE_PATH": str(tmp_path / "instance")}
    out = subprocess.run([sys.executable, "-m", "study", "serve", "--port", "1"], cwd=PROJECT_ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "DATABASE_URL: the database is not at the newest schema" in out.stderr and "db-upgrade" in out.stderr

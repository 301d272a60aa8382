"""How the study app is served: one definition of the server command line, for `python -m study
serve`, the experiment pipelines, the demo and the benchmarks.

granian (a Rust HTTP server running `wsgi:app`) is the default: on the 2-core development
machine it needed 0.62x the server CPU per submission of gunicorn's gthread workers with the same
app, database and sizing, because gunicorn parses HTTP and shuffles connections in Python
(BENCHMARKS.md, section study-servers). gunicorn stays available (`--server gunicorn`, or
`gunicorn wsgi:app` with gunicorn.conf.py). Both are sized by study.config.server_concurrency and
restart a worker that dies.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from study.config import PROJECT_ROOT, configured_database_url, server_concurrency

SERVERS = ("granian", "gunicorn")
DEFAULT_SERVER = "granian"
KEEPALIVE_S = 30  # gunicorn's keep-alive; granian keeps HTTP/1.1 connections open until the client closes


def _executable(name: str) -> str:
    """The server's script beside this interpreter (a virtual environment's bin/), else by name."""
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else name


def check_server(server: str) -> None:
    """ValueError naming the field unless `server` is one of SERVERS."""
    if server not in SERVERS:
        raise ValueError(f"server: {server!r} is not one of {', '.join(SERVERS)}")


def server_command(server: str, host: str, port: int, workers: int, threads: int, *,
                   access_log: bool = False, log_level: str = "warning", backlog: int = 2048,
                   root: Path = PROJECT_ROOT) -> list[str]:
    """argv that serves `wsgi:app` of the project folder `root` (another checkout in the
    benchmarks' before/after runs) with `server` on host:port, `workers` processes of `threads`
    Python threads each; a worker that dies is replaced."""
    check_server(server)
    if workers < 1 or threads < 1:
        raise ValueError(f"workers and threads: must be >= 1 (got {workers} and {threads})")
    if server == "granian":
        return [
            _executable("granian"), "--interface", "wsgi", "--host", host, "--port", str(port),
            "--workers", str(workers), "--blocking-threads", str(threads), "--backlog", str(backlog),
            "--http", "1", "--no-ws", "--respawn-failed-workers", "--workers-kill-timeout", "5",
            "--log-level", log_level, "--access-log" if access_log else "--no-access-log",
            "--working-dir", str(root), "wsgi:app",
        ]
    return [
        _executable("gunicorn"), "--config", str(root / "gunicorn.conf.py"), "--chdir", str(root),
        "-w", str(workers), "-k", "gthread", "--threads", str(threads), "-b", f"{host}:{port}",
        "--backlog", str(backlog), "--keep-alive", str(KEEPALIVE_S), "--graceful-timeout", "5",
        "--log-level", log_level, *(["--access-logfile", "-"] if access_log else []), "wsgi:app",
    ]


def default_sizing(database_url: str | None = None, cpus: int | None = None) -> tuple[int, int]:
    """(workers, threads) for `database_url` (default: the configured database) on `cpus` cores
    (default: this machine's)."""
    return server_concurrency(database_url or configured_database_url(),
                              cpus if cpus is not None else (os.cpu_count() or 1))


def worker_died_marker(server: str) -> str:
    """What the server's log says when it replaces a worker that was killed."""
    return "Unexpected exit from worker" if server == "granian" else "SIGKILL"

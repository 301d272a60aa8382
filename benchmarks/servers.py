"""Shared pieces of the study benchmarks and the hardening harness: loopback only.

- `Conn`: a minimal asyncio HTTP/1.1 keep-alive client (one per simulated participant, so the
  load generator costs little CPU on the same cores as the server).
- `AppServer`: serve the study app (granian or gunicorn, study.serving) on 127.0.0.1, list and
  kill -9 its workers, restart the whole server on the same port.
- `pg_database`: a fresh database on a PostgreSQL server, dropped afterwards.
- `PgCluster`: a private Debian PostgreSQL cluster (pg_createcluster) that a fault test may
  restart without disturbing anyone else's server.
- `cpu_snapshot`: CPU seconds of the server's processes and of PostgreSQL, from /proc.
- `make_study`: a fresh schema and a live study with generated PNG stimuli.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from study.serving import DEFAULT_SERVER, server_command

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgresql://dp:dp@127.0.0.1:5432/dp_test"


# ---------------------------------------------------------------- a minimal HTTP/1.1 client


class Conn:
    """One keep-alive HTTP/1.1 connection (responses must carry Content-Length)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
            self.writer = None

    async def request(self, method: str, path: str, body: object | None = None,
                      headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else b""
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Connection: keep-alive",
                f"Content-Length: {len(data)}"]
        if body is not None:
            head.append("Content-Type: application/json")
        for k, v in (headers or {}).items():
            head.append(f"{k}: {v}")
        raw = ("\r\n".join(head) + "\r\n\r\n").encode() + data
        for attempt in range(2):  # a keep-alive connection the server closed: reopen once
            if self.writer is None:
                await self._open()
            try:
                self.writer.write(raw)
                await self.writer.drain()
                status_line = await self.reader.readline()
                if not status_line:
                    raise ConnectionResetError("closed by server")
                status = int(status_line.split()[1])
                length, close = 0, False
                while True:
                    line = await self.reader.readline()
                    if line in (b"\r\n", b""):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    name = name.strip().lower()
                    if name == "content-length":
                        length = int(value)
                    elif name == "connection" and value.strip().lower() == "close":
                        close = True
                payload = await self.reader.readexactly(length) if length else b""
                if close:
                    await self.close()
                return status, payload
            except (ConnectionError, asyncio.IncompleteReadError, OSError):
                await self.close()
                if attempt == 1 or method == "POST" and path.endswith("/participants"):
                    raise
        raise ConnectionError("unreachable")


# ---------------------------------------------------------------- processes and CPU


def proc_stat(pid: int) -> tuple[str, int, float] | None:
    """(command name, parent pid, user+system CPU seconds) of a process, from /proc."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return name, int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks


def child_pids(parent: int) -> list[int]:
    """Pids of the live processes whose parent is `parent` (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = proc_stat(int(entry.name))
            if stat is not None and stat[1] == parent:
                out.append(int(entry.name))
    return sorted(out)


def cpu_snapshot(server_pid: int) -> dict[str, float]:
    """CPU seconds used so far by the server (its master and workers) and by all PostgreSQL processes."""
    out = {"server": 0.0, "postgres": 0.0}
    if not Path("/proc").is_dir():
        return out
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = proc_stat(int(entry.name))
        if stat is None:
            continue
        name, ppid, cpu = stat
        if ppid == server_pid or int(entry.name) == server_pid:
            out["server"] += cpu
        elif name.startswith("postgres"):
            out["postgres"] += cpu
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            return b" 200 " in s.recv(64)
    except OSError:
        return False


class AppServer:
    """The study app served on 127.0.0.1 by `server` (study.serving: granian by default, or
    gunicorn), as a context manager; faults included: `kill_worker()` (kill -9 of one worker;
    the server starts another) and `restart()` (the whole server killed with SIGKILL and started
    again on the same port)."""

    def __init__(self, env: dict[str, str], workers: int, threads: int, log: Path, *,
                 server: str = DEFAULT_SERVER, access_log: bool = False, log_level: str = "warning",
                 port: int | None = None, code: Path = ROOT) -> None:
        self.port = port or free_port()
        self.server = server
        self.code = code  # the checkout whose wsgi.py is served
        self.cmd = server_command(server, "127.0.0.1", self.port, workers, threads, access_log=access_log,
                                  log_level=log_level, root=code)
        self.env, self.log = env, log
        self.proc: subprocess.Popen | None = None
        self.fh = None

    def start(self, timeout_s: float = 90) -> None:
        self.fh = self.log.open("a")
        self.proc = subprocess.Popen(self.cmd, cwd=self.code, env=self.env, stdout=self.fh, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.server} exited: {self.log.read_text()[-2000:]}")
            if _healthy(self.port):
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.server} did not answer /healthz within {timeout_s:.0f} s")

    def __enter__(self) -> AppServer:
        self.start()
        return self

    def workers(self) -> list[int]:
        return child_pids(self.proc.pid) if self.proc is not None else []

    def kill_worker(self) -> int:
        """kill -9 one worker (the busiest by CPU, so that it is likely mid-request); its pid."""
        pids = self.workers()
        if not pids:
            raise RuntimeError(f"no {self.server} worker to kill")
        pid = max(pids, key=lambda p: (proc_stat(p) or ("", 0, 0.0))[2])
        os.kill(pid, signal.SIGKILL)
        return pid

    def wait_workers(self, n: int, timeout_s: float = 60) -> bool:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if len(self.workers()) >= n and _healthy(self.port):
                return True
            time.sleep(0.2)
        return False

    def restart(self, down_s: float = 0.5) -> None:
        """The whole server: SIGKILL to the master and its workers, a pause, a fresh start."""
        self.kill()
        time.sleep(down_s)
        self.start()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        if self.fh is not None:
            self.fh.close()
            self.fh = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.fh is not None:
            self.fh.close()
            self.fh = None

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------- databases


def drop_database(admin, name: str, attempts: int = 20) -> None:
    """Drop database `name` through `admin` (an AUTOCOMMIT engine on the same server) as a role
    without superuser rights: end this role's own sessions on it, then DROP DATABASE, retried
    while another session is still leaving. (`WITH (FORCE)` would also try to end an autovacuum
    worker, which only a superuser may signal; a plain DROP waits such a worker out itself.)"""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    for attempt in range(attempts):
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :name AND usename = current_user AND pid <> pg_backend_pid()"),
                         {"name": name})
            try:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
                return
            except OperationalError as exc:
                if "being accessed by other users" not in str(exc) or attempt == attempts - 1:
                    raise
        time.sleep(0.25)


def pg_database(server_url: str) -> tuple[str, Callable[[], None]]:
    """Create a fresh database on the server; returns (url, drop function)."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from study.db import make_engine

    name = f"dp_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT", pool_size=1, pool_pre_ping=True)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        drop_database(admin, name)
        admin.dispose()

    return make_url(server_url).set(database=name).render_as_string(hide_password=False), drop


def pg_version() -> str | None:
    """The newest Debian PostgreSQL major version installed (from /etc/postgresql), or None."""
    base = Path("/etc/postgresql")
    if not base.is_dir():
        return None
    versions = sorted((p.name for p in base.iterdir() if p.name.isdigit()), key=int)
    return versions[-1] if versions else None


def why_no_pg_cluster() -> str | None:
    """Why this process cannot create and restart a private PostgreSQL cluster, or None."""
    if os.geteuid() != 0:
        return "creating and restarting a PostgreSQL cluster needs root (pg_createcluster)"
    for tool in ("pg_createcluster", "pg_ctlcluster", "pg_dropcluster", "runuser"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian's postgresql-common)"
    if pg_version() is None:
        return "no PostgreSQL server version under /etc/postgresql"
    return None


class PgCluster:
    """A private Debian PostgreSQL cluster on a free loopback port with role dp/dp and one
    database: a PostgreSQL restart fault (`pg_ctlcluster VER NAME restart`) then disturbs nobody
    else. A context manager; the cluster is dropped on exit."""

    def __init__(self) -> None:
        why = why_no_pg_cluster()
        if why:
            raise RuntimeError(why)
        self.version = pg_version()
        self.name = f"dphard{os.getpid()}{uuid.uuid4().hex[:4]}"
        self.port = free_port()
        self.url = f"postgresql://dp:dp@127.0.0.1:{self.port}/dp"

    def _psql(self, sql: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-q", "-p", str(self.port), "-d", "postgres",
                        "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, capture_output=True, timeout=60)

    def _drop_stale(self) -> None:
        """Drop clusters an earlier, killed run left behind (named dphardPID...; PID is gone)."""
        base = Path("/etc/postgresql") / self.version
        for conf in base.glob("dphard*"):
            m = re.fullmatch(r"dphard(\d+)[0-9a-f]{4}", conf.name)
            if m and not Path(f"/proc/{m.group(1)}").exists():
                subprocess.run(["pg_dropcluster", self.version, conf.name, "--stop"], check=False,
                               capture_output=True, timeout=120)

    def __enter__(self) -> PgCluster:
        self._drop_stale()
        try:
            subprocess.run(["pg_createcluster", self.version, self.name, "--port", str(self.port), "--start",
                            "-o", "fsync=off",
                            "-o", "max_connections=200"], check=True, capture_output=True, timeout=180)
            self.wait_ready()
            self._psql("CREATE ROLE dp LOGIN PASSWORD 'dp' CREATEDB")
            self._psql("CREATE DATABASE dp OWNER dp")
        except BaseException:
            self.drop()
            raise
        return self

    def wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            r = subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)], check=False)
            if r.returncode == 0:
                return
            time.sleep(0.3)
        raise RuntimeError(f"PostgreSQL cluster {self.name} not ready within {timeout_s:.0f} s")

    def restart(self) -> None:
        """`pg_ctlcluster VER NAME restart` (fast shutdown: open connections are cut)."""
        subprocess.run(["pg_ctlcluster", self.version, self.name, "restart", "-m", "fast"],
                       check=True, capture_output=True, timeout=120)
        self.wait_ready()

    def drop(self) -> None:
        subprocess.run(["pg_dropcluster", self.version, self.name, "--stop"], check=False,
                       capture_output=True, timeout=120)

    def __exit__(self, *exc: object) -> None:
        self.drop()


# ---------------------------------------------------------------- a study to run


def write_stimuli(folder: Path, n: int = 20, seed: int = 0) -> Path:
    """`n` small ink-on-black PNGs (half real, half model) and their manifest.csv; its path."""
    from PIL import Image

    from study import manifest

    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    lines = ["stimulus_id,path,sha256,source,model,class_label,class_text,dataset,split"]
    for i in range(n):
        img = Image.new("L", (8, 8))
        img.putdata([255 if rng.random() < 0.3 else 0 for _ in range(64)])
        img.save(folder / f"s{i}.png")
        sha = manifest.sha256_file(folder / f"s{i}.png")
        source = "model" if i % 2 else "real"
        lines.append(f"s{i},s{i}.png,{sha},{source},{'cfgdm' if i % 2 else ''},digit{i % 10},"
                     f"the digit {i % 10},digits,heldout")
    path = folder / "manifest.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def make_study(database_url: str, work: Path, trials: int, task: str = "realfake", slug: str = "bench",
               extra: dict | None = None, n_stimuli: int | None = None) -> str:
    """A fresh schema and a live study (`task`) with `trials` main trials over `n_stimuli`
    generated images (default max(20, trials)); returns its slug. Stimuli are copied under
    work/store, which is the server's STIMULI_ROOT."""
    from sqlalchemy.orm import Session

    from study import manifest, migrate
    from study.db import make_engine

    migrate.upgrade(database_url)
    folder = work / "stimuli"
    manifest_path = write_stimuli(folder, n=n_stimuli or max(20, trials))
    raw = {"task": task, "trials_per_participant": trials, "n_practice": 0, "n_catch": 0,
           "max_participants": None, "conditions": ["a", "b"]}
    if task == "clickme":
        raw.update(min_clicks=2, click_budget=30)
    raw.update(extra or {})
    definition = manifest.parse_definition(raw)
    engine = make_engine(database_url)
    try:
        with Session(engine) as s:
            manifest.create_study(s, manifest.read_manifest(manifest_path), folder, definition,
                                  work / "store", slug=slug, live=True)
    finally:
        engine.dispose()
    return slug


def server_env(database_url: str, work: Path, **extra: str) -> dict[str, str]:
    """The environment of a server serving `database_url` with stimuli under work/store."""
    return {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": extra.pop("SECRET_KEY", "bench-secret"),
            "STIMULI_ROOT": str(work / "store"), "PYTHONPATH": str(ROOT),
            "STUDY_INSTANCE_PATH": str(work / "instance"), **extra}

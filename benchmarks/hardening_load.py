"""Load and fault harness for the live study, bounded in count and time, loopback only.

N simulated participants at once do a whole study through the HTTP API of a live server
(one keep-alive connection each, `benchmarks.servers.Conn`). Once all have started, faults are
injected at set shares of the expected responses:

- `kill_worker`: kill -9 of the busiest server worker (granian or gunicorn starts a new one);
- `restart`: the whole server killed with SIGKILL and started again on the same port;
- `sqlite_lock`: another connection holds SQLite's write lock (BEGIN IMMEDIATE) for `lock_s`;
- `sqlite_lock_long`: the same for 5 s longer than the app's busy timeout, so that writes fail
  (5xx) until the lock goes and the clients' retries must carry the answers through;
- `pg_restart`: `pg_ctlcluster VER NAME restart` of the PostgreSQL cluster (fast shutdown).

Client misbehaviour is mixed in throughout: some participants go offline before a send (their
attempts fail, they back off and come back), some lose the connection right after sending (the
server may or may not have stored it; they resend the same client UUID), and some send the same
response from two tabs at once. Every client retries network errors and 5xx with exponential
backoff and the same UUID, as the browser's outbox does.

Afterwards the database is counted: responses expected (every started participant's trials)
against stored, lost (confirmed by the server, missing), duplicated (two rows for one UUID or one
trial), clicks that do not match their response, participants that could not finish.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import sqlite3
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.servers import AppServer, Conn, PgCluster, make_study, server_env
from study.serving import DEFAULT_SERVER, check_server
from study.simulated_participants import importance_clicks

FAULTS = ("kill_worker", "restart", "sqlite_lock", "sqlite_lock_long", "pg_restart")
SQLITE_BUSY_TIMEOUT_S = 30.0  # study/db.py: PRAGMA busy_timeout=30000
HOST = "127.0.0.1"
RETRYABLE = (ConnectionError, OSError, asyncio.IncompleteReadError, ValueError, asyncio.TimeoutError)


@dataclass
class LoadConfig:
    """One harness run. `faults` run in order at evenly spaced shares of the expected responses."""

    participants: int = 50
    trials: int = 6
    task: str = "clickme"
    faults: tuple[str, ...] = ("kill_worker", "sqlite_lock", "restart")
    offline_share: float = 0.1
    lost_reply_share: float = 0.1
    two_tab_share: float = 0.1
    workers: int = 2
    threads: int = 8
    server: str = DEFAULT_SERVER  # study.serving.SERVERS
    lock_s: float = 3.0
    request_timeout_s: float = 60.0
    give_up_s: float = 180.0  # a client stops retrying one request after this long
    deadline_s: float = 900.0  # the whole run
    seed: int = 0

    def check(self) -> None:
        bad = [f for f in self.faults if f not in FAULTS]
        if bad:
            raise ValueError(f"faults: unknown {bad}; choose from {', '.join(FAULTS)}")
        check_server(self.server)
        if not 1 <= self.participants <= 5000:
            raise ValueError("participants: must lie within [1, 5000]")
        if not 1 <= self.trials <= 200:
            raise ValueError("trials: must lie within [1, 200]")
        if self.task not in ("clickme", "realfake"):
            raise ValueError("task: must be clickme or realfake")


@dataclass
class FaultRecord:
    name: str
    at_s: float
    ok: bool
    detail: str


@dataclass
class LoadReport:
    """What the clients saw and what the database holds afterwards."""

    config: LoadConfig
    backend: str
    started: int = 0
    start_lost: int = 0  # the start's reply was lost and the retry was refused (409)
    start_resumed: int = 0  # a start retried after a lost reply got its participant back (200)
    completed: int = 0
    gave_up: int = 0
    sent: int = 0  # distinct client UUIDs sent
    confirmed: int = 0
    repeats: int = 0  # a resent UUID answered 200 with the stored result
    retries: int = 0
    offline_attempts: int = 0
    lost_replies: int = 0
    two_tab_pairs: int = 0
    two_tab_statuses: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    client_errors: list[str] = field(default_factory=list)
    faults: list[FaultRecord] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    db: dict[str, int] = field(default_factory=dict)
    confirmed_uuids: set[str] = field(default_factory=set)

    def error(self, message: str) -> None:
        if len(self.client_errors) < 20:
            self.client_errors.append(message)

    def summary(self) -> dict[str, Any]:
        lat = np.asarray(self.latencies_ms) if self.latencies_ms else np.asarray([np.nan])
        return {
            "backend": self.backend, "participants": self.config.participants,
            "trials": self.config.trials, "task": self.config.task, "started": self.started,
            "start_lost": self.start_lost, "start_resumed": self.start_resumed, "completed": self.completed, "gave_up": self.gave_up,
            "sent": self.sent, "confirmed": self.confirmed, "repeats": self.repeats,
            "retries": self.retries, "offline_attempts": self.offline_attempts,
            "lost_replies": self.lost_replies, "two_tab_pairs": self.two_tab_pairs,
            "two_tab_statuses": dict(self.two_tab_statuses), "statuses": dict(self.statuses),
            "faults": [f"{f.name}@{f.at_s:.1f}s:{'ok' if f.ok else 'FAILED ' + f.detail}" for f in self.faults],
            "wall_s": round(self.wall_s, 1),
            "p50_ms": round(float(np.nanpercentile(lat, 50)), 1),
            "p99_ms": round(float(np.nanpercentile(lat, 99)), 1),
            "db": self.db, "first_errors": self.client_errors[:5],
        }

    def problems(self) -> list[str]:
        """Every way this run broke the bar (empty when none was lost, duplicated or stuck)."""
        d, out = self.db, []
        if self.started + self.start_lost != self.config.participants:
            out.append(f"only {self.started} of {self.config.participants} participants started")
        if self.completed != self.started:
            out.append(f"{self.started - self.completed} started participants could not finish")
        if d.get("lost", 0):
            out.append(f"{d['lost']} confirmed responses are missing from the database")
        if d.get("duplicated", 0):
            out.append(f"{d['duplicated']} responses are stored twice")
        if d.get("clicks_mismatch", 0):
            out.append(f"{d['clicks_mismatch']} responses whose stored clicks differ from n_clicks")
        if d.get("stored_of_finishers", 0) != d.get("expected_of_finishers", -1):
            out.append(f"stored {d.get('stored_of_finishers')} responses of finishers, expected "
                       f"{d.get('expected_of_finishers')}")
        if d.get("progress_mismatch", 0):
            out.append(f"{d['progress_mismatch']} participants whose progress differs from their responses")
        if any(not f.ok for f in self.faults):
            out.append("a fault could not be injected: " + "; ".join(f.detail for f in self.faults if not f.ok))
        return out


class _Run:
    """The clients of one run (all in one asyncio loop) and the progress the faults wait for."""

    def __init__(self, cfg: LoadConfig, report: LoadReport, port: int, slug: str) -> None:
        self.cfg, self.report, self.port, self.slug = cfg, report, port, slug
        self.all_started = threading.Event()
        self.faults_done = threading.Event()
        self.n_start_done = 0
        self.t0 = time.perf_counter()
        self.last_retried: dict[int, bool] = {}
        # Exactly ceil(share * N) participants (a seeded choice) go offline, lose a reply, or
        # answer from two tabs.
        order = list(range(cfg.participants))
        random.Random(cfg.seed).shuffle(order)
        self.modes: dict[int, str] = {}
        for mode, share in (("offline", cfg.offline_share), ("lost_reply", cfg.lost_reply_share),
                            ("two_tabs", cfg.two_tab_share)):
            k = math.ceil(share * cfg.participants) if share > 0 else 0
            self.modes.update({i: mode for i in order[len(self.modes):len(self.modes) + k]})

    async def call(self, conn: Conn, method: str, path: str, body: object | None, headers: dict[str, str],
                   rng: random.Random) -> tuple[int, bytes] | None:
        """One request, retried on network errors and 5xx with backoff; None after give_up_s.
        `self.last_retried[id(conn)]` says whether the answer came after a retry."""
        delay, t_first, retried = 0.05, time.perf_counter(), False
        while True:
            try:
                status, payload = await asyncio.wait_for(conn.request(method, path, body, headers),
                                                         self.cfg.request_timeout_s)
                self.report.statuses[status] += 1
                if status < 500:
                    self.last_retried[id(conn)] = retried
                    return status, payload
                failure = f"{method} {path}: HTTP {status} {payload[:120]!r}"
            except RETRYABLE as exc:
                await conn.close()
                failure = f"{method} {path}: {type(exc).__name__} {exc}"
                self.report.statuses["network error"] += 1
            if time.perf_counter() - t_first > self.cfg.give_up_s:
                self.report.error("gave up: " + failure)
                return None
            self.report.retries += 1
            retried = True
            await asyncio.sleep(delay * (1 + rng.random()))
            delay = min(delay * 2, 2.0)

    async def _start(self, i: int, conn: Conn, rng: random.Random) -> str | None:
        """Start with a start_key, as the browser does; participants who lose replies lose the
        start's reply too and must get their participant back (200) on the retry."""
        body = {"platform": "prolific", "PROLIFIC_PID": f"hard-{self.cfg.seed}-{i}-{uuid.uuid4().hex[:6]}",
                "STUDY_ID": "hardening", "SESSION_ID": f"s{i}", "consent": True,
                "start_key": str(uuid.UUID(int=rng.getrandbits(128), version=4))}
        path = f"/api/v1/studies/{self.slug}/participants"
        try:
            if self.modes.get(i) == "lost_reply":
                await self._drop_after_send(path, body, {})
                await asyncio.sleep(rng.uniform(0.05, 0.3))
            out = await self.call(conn, "POST", path, body, {}, rng)
            if out is None:
                return None
            status, payload = out
            if status in (200, 201):
                self.report.started += 1
                self.report.start_resumed += status == 200
                return json.loads(payload)["token"]
            if status == 409 and self.last_retried.get(id(conn)):
                self.report.start_lost += 1  # stored, but the reply was lost: one start per id
            else:
                self.report.error(f"start: HTTP {status} {payload[:200]!r}")
            return None
        finally:
            self.n_start_done += 1
            if self.n_start_done == self.cfg.participants:
                self.all_started.set()

    def _body(self, trial: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        body: dict[str, Any] = {"client_uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                                "trial_id": trial["id"], "rt_ms": round(rng.uniform(250, 2500), 1),
                                "client_sent_at": time.time() * 1000}
        if trial.get("exposure_ms") is not None:
            body["exposure_ms"] = trial["exposure_ms"]
        if trial["task"] == "clickme":
            s = trial["settings"]
            n = rng.randint(s["min_clicks"], min(s["click_budget"], s["min_clicks"] + 8))
            body["clicks"] = importance_clicks(np.ones((8, 8)), n, rng)
        else:
            body["answer"] = rng.choice(("real", "fake"))
        return body

    async def _drop_after_send(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        """Send the request and cut the connection before the reply: a lost reply."""
        data = json.dumps(body).encode()
        head = (f"POST {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
        try:
            _, writer = await asyncio.open_connection(HOST, self.port)
            writer.write(head + data)
            await writer.drain()
            writer.close()
        except OSError:
            pass
        self.report.lost_replies += 1

    async def _send(self, conn: Conn, body: dict[str, Any], headers: dict[str, str], rng: random.Random) -> bool:
        t0 = time.perf_counter()
        out = await self.call(conn, "POST", "/api/v1/participant/responses", body, headers, rng)
        if out is None:
            return False
        status, payload = out
        if status in (200, 201):
            self.report.latencies_ms.append((time.perf_counter() - t0) * 1000)
            self.report.confirmed += 1
            self.report.repeats += status == 200
            self.report.confirmed_uuids.add(body["client_uuid"])
            return True
        self.report.error(f"response: HTTP {status} {payload[:200]!r}")
        return False

    async def _two_tabs(self, body: dict[str, Any], headers: dict[str, str], rng: random.Random) -> bool:
        """The same response from two tabs at once (two connections); one row must result."""
        conns = [Conn(HOST, self.port), Conn(HOST, self.port)]
        try:
            outs = await asyncio.gather(*(self.call(c, "POST", "/api/v1/participant/responses", body, headers, rng)
                                          for c in conns))
        finally:
            for c in conns:
                await c.close()
        self.report.two_tab_pairs += 1
        statuses = tuple(sorted(o[0] if o else 0 for o in outs))
        self.report.two_tab_statuses[str(statuses)] += 1
        if all(o is not None and o[0] in (200, 201) for o in outs):
            self.report.confirmed += 1
            self.report.confirmed_uuids.add(body["client_uuid"])
            return True
        self.report.error(f"two tabs: statuses {statuses}")
        return False

    async def participant(self, i: int) -> None:
        rng = random.Random(f"{self.cfg.seed}:{i}")
        conn = Conn(HOST, self.port)
        try:
            token = await self._start(i, conn, rng)
            if token is None:
                return
            headers = {"X-Participant-Token": token}
            mode = self.modes.get(i)  # misbehaves at most one way, at one random trial
            odd_trial = rng.randrange(self.cfg.trials)
            while True:
                out = await self.call(conn, "GET", "/api/v1/participant/trial", None, headers, rng)
                if out is None:
                    self.report.gave_up += 1
                    return
                status, payload = out
                if status != 200:
                    self.report.error(f"trial: HTTP {status} {payload[:200]!r}")
                    return
                data = json.loads(payload)
                if data.get("done"):
                    break
                trial = data["trial"]
                body = self._body(trial, rng)
                self.report.sent += 1
                here = mode if trial["index"] == odd_trial else None
                if here == "offline":  # the network is down: attempts fail, back off, come back
                    delay = 0.1
                    for _ in range(rng.randint(2, 4)):
                        self.report.offline_attempts += 1
                        await asyncio.sleep(delay)
                        delay *= 2
                elif here == "lost_reply":
                    await self._drop_after_send("/api/v1/participant/responses", body, headers)
                    await asyncio.sleep(rng.uniform(0.05, 0.5))
                if trial["index"] == trial["n_trials"] - 1:
                    # Hold the last answer until every fault has been injected, so that a fast run
                    # cannot finish before its faults; the earlier trials run under the faults.
                    while not self.faults_done.is_set():
                        await asyncio.sleep(0.1)
                ok = (await self._two_tabs(body, headers, rng) if here == "two_tabs"
                      else await self._send(conn, body, headers, rng))
                if not ok:
                    self.report.gave_up += 1
                    return
            out = await self.call(conn, "POST", "/api/v1/participant/complete", {}, headers, rng)
            if out is not None and out[0] == 200 and json.loads(out[1]).get("completion_code"):
                self.report.completed += 1
            else:
                self.report.error(f"complete: {out and out[0]} {out and out[1][:200]!r}")
        finally:
            await conn.close()

    async def run(self) -> None:
        await asyncio.wait_for(asyncio.gather(*(self.participant(i) for i in range(self.cfg.participants))),
                               self.cfg.deadline_s)


def _hold_sqlite_lock(database_url: str, seconds: float) -> str:
    """Another connection takes SQLite's write lock and keeps it for `seconds`."""
    path = database_url.split("///", 1)[1]
    con = sqlite3.connect(path, timeout=60, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("CREATE TABLE IF NOT EXISTS _hardening_lock (x INTEGER)")
        time.sleep(seconds)
        con.execute("ROLLBACK")
    finally:
        con.close()
    return f"write lock held {seconds:g} s"


def _fault_thread(run: _Run, server: AppServer, database_url: str, pg: PgCluster | None,
                  stop: threading.Event) -> threading.Thread:
    cfg, report = run.cfg, run.report
    expected = cfg.participants * (cfg.trials - 1)  # the last answers wait for the faults

    def inject(name: str) -> str:
        if name == "kill_worker":
            before = len(server.workers())
            pid = server.kill_worker()
            if not server.wait_workers(before, timeout_s=60):
                raise RuntimeError(f"{server.server} did not replace the killed worker within 60 s")
            return f"killed worker {pid}"
        if name == "restart":
            server.restart()
            return "server restarted"
        if name == "sqlite_lock":
            if not database_url.startswith("sqlite"):
                raise RuntimeError("sqlite_lock needs a SQLite database")
            return _hold_sqlite_lock(database_url, cfg.lock_s)
        if name == "sqlite_lock_long":
            if not database_url.startswith("sqlite"):
                raise RuntimeError("sqlite_lock_long needs a SQLite database")
            return _hold_sqlite_lock(database_url, SQLITE_BUSY_TIMEOUT_S + 5)
        if name == "pg_restart":
            if pg is None:
                raise RuntimeError("pg_restart needs a PostgreSQL cluster this harness controls")
            pg.restart()
            return "PostgreSQL restarted"
        raise ValueError(name)

    def body() -> None:
        while not run.all_started.wait(0.2):
            if stop.is_set():
                run.faults_done.set()
                return
        for k, name in enumerate(cfg.faults):
            goal = expected * (k + 1) / (len(cfg.faults) + 1)
            while report.confirmed < goal and not stop.is_set():
                time.sleep(0.05)
            if stop.is_set():
                report.faults.append(FaultRecord(name, time.perf_counter() - run.t0, False, "run ended first"))
                continue
            at = time.perf_counter() - run.t0
            try:
                detail = inject(name)
                report.faults.append(FaultRecord(name, at, True, detail))
            except Exception as exc:  # recorded as a failed injection; the run goes on
                report.faults.append(FaultRecord(name, at, False, f"{type(exc).__name__}: {exc}"))
        run.faults_done.set()

    t = threading.Thread(target=body, name="faults", daemon=True)
    t.start()
    return t


def count_database(database_url: str, slug: str, confirmed: set[str]) -> dict[str, int]:
    """Counts of one study's rows: expected vs stored, lost, duplicated, clicks, progress."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from study.db import make_engine
    from study.tables import Click, Participant, Response, Study, Trial

    engine = make_engine(database_url)
    try:
        with Session(engine) as s:
            study_id = s.scalar(select(Study.id).where(Study.slug == slug))
            pids = select(Participant.id).where(Participant.study_id == study_id)
            resp = select(Response).where(Response.participant_id.in_(pids)).subquery()
            total = s.scalar(select(func.count()).select_from(resp))
            d_uuid = s.scalar(select(func.count(func.distinct(resp.c.client_uuid))))
            d_trial = s.scalar(select(func.count(func.distinct(resp.c.trial_id))))
            stored = set(s.scalars(select(resp.c.client_uuid)))
            n_clicks = dict(s.execute(select(resp.c.id, resp.c.n_clicks)).all())
            clicks = dict(s.execute(select(Click.response_id, func.count()).where(Click.response_id.in_(
                select(resp.c.id))).group_by(Click.response_id)).all())
            per_p = dict(s.execute(select(Response.participant_id, func.count()).where(
                Response.participant_id.in_(pids)).group_by(Response.participant_id)).all())
            parts = s.execute(select(Participant.id, Participant.status, Participant.current_index,
                                     Participant.n_trials).where(Participant.study_id == study_id)).all()
            n_trial_rows = s.scalar(select(func.count()).select_from(Trial).where(Trial.participant_id.in_(pids)))
    finally:
        engine.dispose()
    finishers = [p for p in parts if p.status == "completed"]
    return {
        "participants": len(parts),
        "completed": len(finishers),
        "trial_rows": n_trial_rows,
        "responses": total,
        "expected_of_finishers": sum(p.n_trials for p in finishers),
        "stored_of_finishers": sum(per_p.get(p.id, 0) for p in finishers),
        "lost": len(confirmed - stored),
        "duplicated": (total - d_uuid) + (total - d_trial),
        "clicks": sum(clicks.values()),
        "clicks_mismatch": sum(1 for rid, n in n_clicks.items() if clicks.get(rid, 0) != n),
        "progress_mismatch": sum(1 for p in parts if per_p.get(p.id, 0) != p.current_index),
        "stored_unconfirmed": len(stored - confirmed),
        "never_answered": sum(1 for p in parts if per_p.get(p.id, 0) == 0),
    }


def run_load(cfg: LoadConfig, database_url: str, work: Path, pg: PgCluster | None = None,
             backend: str | None = None, secret_key: str = "bench-secret") -> LoadReport:
    """One whole run: a fresh study on `database_url`, the server (cfg.server), the clients and
    the faults, the counts. The server's log is in work/server.log."""
    cfg.check()
    backend = backend or ("sqlite" if database_url.startswith("sqlite") else "postgres")
    report = LoadReport(cfg, backend)
    slug = make_study(database_url, work, cfg.trials, task=cfg.task, slug="hardening")
    env = server_env(database_url, work, SECRET_KEY=secret_key)
    with AppServer(env, cfg.workers, cfg.threads, work / "server.log", server=cfg.server) as server:
        run = _Run(cfg, report, server.port, slug)
        stop = threading.Event()
        faults = _fault_thread(run, server, database_url, pg, stop)
        try:
            asyncio.run(run.run())
        finally:
            stop.set()
            faults.join(timeout=300)
            report.wall_s = time.perf_counter() - run.t0
    report.db = count_database(database_url, slug, report.confirmed_uuids)
    return report

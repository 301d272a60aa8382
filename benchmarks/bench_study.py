"""Study platform under load: the served app + SQLite (WAL) and + PostgreSQL, many participants at once.

    python -m benchmarks study [--participants 200] [--trials 50] [--workers 2] [--threads 32]
                               [--paced-rate 300] [--backends sqlite,postgres] [--server granian|gunicorn]
                               [--profile] [--no-write]

For each database: a fresh database at the newest schema, a live real-or-fake study made from a
generated manifest, the server (study.serving: granian by default) on 127.0.0.1. Then, on the same server:
  1. N participants start through the API (POST /api/v1/studies/SLUG/participants);
  2. baseline: N concurrent clients call the no-op GET /healthz, as many calls as submissions;
  3. submissions: the N participants at once each POST their T responses in order
     (the trial ids come from the database, as a browser knows them from GET /trial);
  2 and 3 run twice: back to back (as fast as the server answers) and paced (the participants
  together offer --paced-rate requests/s, as people with think time do);
  4. the full participant flow with study.simulated_participants (httpx threads) on a second study.
Reported: requests/s, p50 and p99 latency, errors, and, counted in the database afterwards,
responses lost (confirmed but not stored) and duplicated (stored twice).

`--compare REV` measures before and after in one run: the server from git revision REV (a
`git archive` in a temporary folder) and from the working tree, in alternating rounds, each on a
fresh database, plus each code's CPU per submission in one process through WSGI; the ratios go
to section study-ab of BENCHMARKS.md. `--compare-servers` measures the two servers the app ships
with (gunicorn the baseline, granian) on the same code in alternating rounds: section study-servers.

The load generator is a small asyncio HTTP/1.1 keep-alive client (one connection per simulated
participant) so that the client costs as little CPU as possible on the same 2 cores.
PostgreSQL: the server of DATABASE_URL (else DP_TEST_POSTGRES_URL, else the local dp server);
a database is created for the run and dropped after it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# The HTTP client, the server runner, the PostgreSQL database helper and the CPU accounting
# are shared with the hardening benchmark (benchmarks/servers.py).
from benchmarks.servers import (  # noqa: F401  (Conn and _proc_stat are part of this module's API)
    AppServer,
    Conn,
    cpu_snapshot,
    make_study,
)
from benchmarks.servers import free_port as _free_port  # noqa: F401
from benchmarks.servers import pg_database as _pg_database
from benchmarks.servers import proc_stat as _proc_stat  # noqa: F401
from study.serving import DEFAULT_SERVER, SERVERS

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgresql://dp:dp@127.0.0.1:5432/dp_test"
GOAL_RATE = 1000.0
GOAL = ("goal: 200 participants at once submitting >= 1,000 responses/s with p99 < 100 ms, "
        "0 errors / lost / duplicated")


# ---------------------------------------------------------------- a minimal HTTP/1.1 client


@dataclass
class Phase:
    name: str
    ok: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    error_samples: list[str] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds: server, postgres, client

    def row(self) -> dict[str, object]:
        lat = np.asarray(self.latencies_ms)
        p50, p99 = (float(np.percentile(lat, q)) for q in (50, 99)) if lat.size else (float("nan"),) * 2
        return {
            "phase": self.name, "ok": self.ok, "errors": self.errors,
            "per_s": self.ok / self.wall_s if self.wall_s else float("nan"),
            "p50_ms": p50, "p99_ms": p99,
            **{f"cpu_ms_{k}": 1000 * v / max(self.ok + self.errors, 1) for k, v in self.cpu.items()},
        }

    def record(self, status: int, ok_codes: tuple[int, ...], ms: float, body: bytes) -> bool:
        if status in ok_codes:
            self.ok += 1
            self.latencies_ms.append(ms)
            return True
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(f"HTTP {status}: {body[:200].decode(errors='replace')}")
        return False


async def _timed(conn: Conn, phase: Phase, ok: tuple[int, ...], method: str, path: str,
                 body: object | None = None, headers: dict[str, str] | None = None) -> bytes | None:
    t0 = time.perf_counter()
    try:
        status, payload = await conn.request(method, path, body, headers)
    except (ConnectionError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
        phase.errors += 1
        if len(phase.error_samples) < 5:
            phase.error_samples.append(f"{type(exc).__name__}: {exc}")
        return None
    return payload if phase.record(status, ok, (time.perf_counter() - t0) * 1000, payload) else None


# ---------------------------------------------------------------- the three phases


async def start_participants(host: str, port: int, slug: str, n: int) -> tuple[Phase, list[tuple[Conn, str]]]:
    phase = Phase("start participants")
    conns = [Conn(host, port) for _ in range(n)]

    async def one(i: int) -> str | None:
        body = {"platform": "prolific", "PROLIFIC_PID": f"bench-{i}-{uuid.uuid4().hex[:8]}",
                "STUDY_ID": "bench", "SESSION_ID": f"s{i}", "consent": True}
        payload = await _timed(conns[i], phase, (201,), "POST", f"/api/v1/studies/{slug}/participants", body)
        return json.loads(payload)["token"] if payload else None

    t0 = time.perf_counter()
    tokens = await asyncio.gather(*(one(i) for i in range(n)))
    phase.wall_s = time.perf_counter() - t0
    return phase, [(c, t) for c, t in zip(conns, tokens, strict=True) if t]


async def _paced(conn: Conn, calls: int, interval_s: float, rng: random.Random, send) -> None:
    """`calls` calls of `send(conn)`, one every `interval_s` from a random offset (or back to
    back when interval_s is 0 or a call takes longer); stops at the first failure."""
    next_at = time.perf_counter() + rng.uniform(0, interval_s)
    for _ in range(calls):
        delay = next_at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        next_at += interval_s
        if not await send(conn):
            return


async def baseline(conns: list[Conn], calls_each: int, rate: float | None = None, seed: int = 0) -> Phase:
    """GET /healthz from every connection: back to back, or paced to `rate` calls/s in total."""
    phase = Phase("GET /healthz (no-op baseline)" + (f", paced at {rate:g}/s" if rate else ""))
    interval = len(conns) / rate if rate else 0.0

    async def send(conn: Conn) -> bool:
        return await _timed(conn, phase, (200,), "GET", "/healthz") is not None

    t0 = time.perf_counter()
    await asyncio.gather(*(_paced(c, calls_each, interval, random.Random(f"b{seed}:{i}"), send)
                           for i, c in enumerate(conns)))
    phase.wall_s = time.perf_counter() - t0
    return phase


async def submit(people: list[tuple[Conn, str, list[int]]], seed: int, rate: float | None = None) -> tuple[Phase, list[str]]:
    """Each participant POSTs a response to each of its trials in order: back to back, or
    paced so that all together offer `rate` submissions/s."""
    phase = Phase("POST /participant/responses" + (f", paced at {rate:g}/s" if rate else ""))
    confirmed: list[str] = []
    interval = len(people) / rate if rate else 0.0

    async def one(conn: Conn, token: str, trial_ids: list[int], rng: random.Random) -> None:
        headers = {"X-Participant-Token": token}
        pending = iter(trial_ids)

        async def send(conn: Conn) -> bool:
            body = {"client_uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "trial_id": next(pending),
                    "answer": rng.choice(("real", "fake")), "rt_ms": round(rng.uniform(300, 1500), 1),
                    "exposure_ms": 500}
            if await _timed(conn, phase, (201,), "POST", "/api/v1/participant/responses", body, headers) is None:
                return False  # the next trial would be refused as out of order
            confirmed.append(body["client_uuid"])
            return True

        await _paced(conn, len(trial_ids), interval, rng, send)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(c, t, ids, random.Random(f"{seed}:{i}")) for i, (c, t, ids) in enumerate(people)))
    phase.wall_s = time.perf_counter() - t0
    return phase, confirmed


# ---------------------------------------------------------------- set-up: database, study, server


def _make_study(database_url: str, work: Path, trials: int, sim_trials: int, code: Path = ROOT) -> str:
    """A fresh schema and two live real-or-fake studies over 20 stimuli: `bench` (`trials` per
    participant, for the asyncio client) and `bench-sim` (`sim_trials`, for study.simulated_participants);
    returns `bench`. Made by the checkout `code`'s own migrations and study builder."""
    make_study_with(code, database_url, work, trials, slug="bench")
    make_study_with(code, database_url, work, sim_trials, slug="bench-sim")
    return "bench"


def make_study_with(code: Path, database_url: str, work: Path, trials: int, slug: str) -> str:
    """`benchmarks.servers.make_study` (20 stimuli) as the checkout `code` has it: in a before/after
    comparison each code migrates its own database and stores the settings it knows (a later
    code's settings carry fields an earlier one refuses)."""
    if code == ROOT:
        return make_study(database_url, work, trials, slug=slug, n_stimuli=20)
    script = ("import sys; from pathlib import Path; from benchmarks.servers import make_study; "
              "print(make_study(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), slug=sys.argv[4], n_stimuli=20))")
    return run_in_checkout(code, script, [database_url, str(work), str(trials), slug], f"study set-up with {code}")


def run_in_checkout(code: Path, script: str, argv: list[str], what: str, **env: str) -> str:
    """Run `script` (python -c) with checkout `code` first on sys.path and `env` added to the
    environment; its last line of output. RuntimeError with the end of its stderr if it fails."""
    out = subprocess.run([sys.executable, "-c", script, *argv], cwd=code,
                         env={**os.environ, **env, "PYTHONPATH": str(code)}, capture_output=True, text=True,
                         check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{what} failed: {out.stderr[-2000:]}")
    return out.stdout.strip().splitlines()[-1]


def _trial_ids(database_url: str, slug: str, tokens: list[str]) -> dict[str, list[int]]:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from study.db import make_engine
    from study.tables import Participant, Trial

    engine = make_engine(database_url)
    out: dict[str, list[int]] = {t: [] for t in tokens}
    try:
        with Session(engine) as s:
            rows = s.execute(
                select(Participant.token, Trial.id).join(Trial, Trial.participant_id == Participant.id)
                .where(Participant.token.in_(tokens)).order_by(Participant.id, Trial.index)
            )
            for token, trial_id in rows:
                out[token].append(trial_id)
    finally:
        engine.dispose()
    return out


def _count(database_url: str, confirmed: list[str]) -> dict[str, int]:
    """Responses in the database vs the ones the server confirmed."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from study.db import make_engine
    from study.tables import Response

    engine = make_engine(database_url)
    try:
        with Session(engine) as s:
            total = s.scalar(select(func.count()).select_from(Response))
            distinct_uuid = s.scalar(select(func.count(func.distinct(Response.client_uuid))))
            distinct_trial = s.scalar(select(func.count(func.distinct(Response.trial_id))))
            stored = set(s.scalars(select(Response.client_uuid)))
    finally:
        engine.dispose()
    return {
        "stored": total,
        "lost": len(set(confirmed) - stored),
        "duplicated": (total - distinct_uuid) + (total - distinct_trial),
        "unconfirmed_stored": len(stored - set(confirmed)),
    }


# Where the server's sampled time goes, first match from the top of the list wins.
PROFILE_CATEGORIES = (
    ("pool checkout (new connections, pre-ping)", ("Pool.connect", "_checkout", "do_ping", "_create_connection")),
    ("commit", ("do_commit",)),
    ("SQL statements in the driver (SQLite lock waits, PostgreSQL round trips)", ("do_execute", "_driver_row")),
    ("waiting for the SQLite write lock", ("SqliteWriteLock.__enter__",)),
    ("writing responses", ("gunicorn/util.py", "Response.write")),
    ("application Python (Flask, SQLAlchemy, endpoint)", ("Flask.__call__",)),
    ("waiting for requests", ("EpollSelector.select", "wait_for_and_dispatch_events")),
    ("idle worker threads", ("leaf:_worker ",)),
)


def find_py_spy() -> str | None:
    """py-spy (optional, `pip install py-spy`): $PY_SPY, next to this Python, or on PATH."""
    candidates = [os.environ.get("PY_SPY"), str(Path(sys.executable).parent / "py-spy"), shutil.which("py-spy")]
    return next((c for c in candidates if c and Path(c).is_file()), None)


class Profiler:
    """py-spy sampling the server's master and its workers while a phase runs."""

    def __init__(self, exe: str, pid: int, out: Path) -> None:
        self.out = out
        self.proc = subprocess.Popen(
            [exe, "record", "--pid", str(pid), "--subprocesses", "--format", "raw", "-r", "100",
             "--nonblocking", "-o", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # let it attach before the phase starts

    def stop(self) -> list[tuple[str, float]]:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return []
        return summarise_profile(self.out.read_text() if self.out.exists() else "")


def summarise_profile(raw: str) -> list[tuple[str, float]]:
    """Shares of py-spy's raw samples ("frame;frame;... count" lines) per PROFILE_CATEGORIES."""
    counts: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        total += int(n)
        leaf = stack.rsplit(";", 1)[-1]
        name = next((label for label, keys in PROFILE_CATEGORIES
                     if any(leaf.startswith(k[5:]) if k.startswith("leaf:") else k in stack for k in keys)), "other")
        counts[name] = counts.get(name, 0) + int(n)
    return [(name, counts[name] / total) for name in sorted(counts, key=counts.get, reverse=True)] if total else []


def fresh_database(backend: str, work: Path) -> tuple[str, Callable[[], None] | None]:
    """A new database for one run: a SQLite file in `work`, or a database created on the
    PostgreSQL server of DATABASE_URL (else DP_TEST_POSTGRES_URL, else the local dp server);
    with the function that drops it (None for SQLite)."""
    if backend == "sqlite":
        return f"sqlite:///{work / 'bench.db'}", None
    return _pg_database(os.environ.get("DATABASE_URL") or os.environ.get("DP_TEST_POSTGRES_URL") or DEFAULT_PG)


def run_backend(backend: str, args: argparse.Namespace, code: Path = ROOT,
                server: str | None = None) -> dict[str, object]:
    """One full run on `backend` with the app's code from the checkout `code`, served by `server`
    (else --server)."""
    server = server or args.server
    with tempfile.TemporaryDirectory(prefix=f"dp-bench-{backend}-") as tmp:
        work = Path(tmp)
        url, drop = fresh_database(backend, work)
        try:
            slug = _make_study(url, work, (2 + len(args.paced_rates)) * args.trials, args.sim_trials, code)
            env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "bench-secret", "STIMULI_ROOT": str(work / "store"),
                   "PYTHONPATH": str(code)}
            workers, threads = concurrency(url, args)
            with AppServer(env, workers, threads, work / "server.log", server=server, code=code) as server_proc:
                result = asyncio.run(_drive(server_proc.proc.pid, server_proc.port, slug, url, args, work))
                if args.simulate:
                    before, client0 = cpu_snapshot(server_proc.proc.pid), time.process_time()
                    result["simulate"] = _full_flow(server_proc.port, args)
                    after = cpu_snapshot(server_proc.proc.pid)
                    result["simulate_cpu"] = {k: after[k] - before[k] for k in after} | {"client": time.process_time() - client0}
                    result["confirmed"] += result["simulate"].confirmed_uuids
                result["counts"] = _count(url, result["confirmed"])
                result["server_log_tail"] = server_proc.log.read_text()[-1500:]
        finally:
            if drop is not None:
                drop()
    result["backend"] = backend
    result["server"] = server
    result["concurrency"] = (workers, threads)
    return result


def concurrency(url: str, args: argparse.Namespace) -> tuple[int, int]:
    """The server's workers and threads of a run: the command line's, else what study.serving
    would pick for this database on this machine."""
    from study.config import server_concurrency

    workers, threads = server_concurrency(url, os.cpu_count() or 1)
    return args.workers or workers, args.threads or threads


async def _measured(server_pid: int, coro):
    """Run a phase and attach the CPU seconds that the server, PostgreSQL and this client used."""
    before, client0 = cpu_snapshot(server_pid), time.process_time()
    out = await coro
    after, client1 = cpu_snapshot(server_pid), time.process_time()
    phase = out[0] if isinstance(out, tuple) else out
    phase.cpu = {k: after[k] - before[k] for k in after} | {"client": client1 - client0}
    return out


async def _drive(server_pid: int, port: int, slug: str, url: str, args: argparse.Namespace,
                 work: Path) -> dict[str, object]:
    """Start the participants, then per load model (back to back; paced at each rate) the
    /healthz baseline and the submissions; each participant has `trials` trials for each load
    model and for the pass that py-spy samples (with --profile)."""
    started, people = await start_participants("127.0.0.1", port, slug, args.participants)
    conns = [c for c, _ in people]
    trial_ids = _trial_ids(url, slug, [t for _, t in people])
    runs, confirmed, profile = [], [], None

    def trials(k: int) -> list[tuple[Conn, str, list[int]]]:
        return [(c, t, trial_ids[t][k * args.trials:(k + 1) * args.trials]) for c, t in people]

    for k, rate in enumerate((None, *args.paced_rates)):
        base = await _measured(server_pid, baseline(conns, args.trials, rate, args.seed))
        sub, ok = await _measured(server_pid, submit(trials(k), args.seed + k, rate))
        runs.append((base, sub))
        confirmed += ok
    if args.py_spy:  # a third, profiled pass: sampling costs CPU, so it stays out of the table
        spy = Profiler(args.py_spy, server_pid, work / "profile.txt")
        k = 1 + len(args.paced_rates)
        sub, ok = await submit(trials(k), args.seed + k)
        profile = {"shares": spy.stop(), "per_s": sub.row()["per_s"]}
        confirmed += ok
    for c in conns:
        await c.close()
    return {"start": started, "runs": runs, "confirmed": confirmed, "profile": profile}


def _full_flow(port: int, args: argparse.Namespace):
    """study.simulated_participants's participants (httpx in threads) through the whole API at once: start,
    GET trial, POST response (retried with its UUID), complete."""
    from study.simulated_participants import SimulationConfig, run_simulation

    cfg = SimulationConfig(behaviour="random", n=args.participants, concurrency=args.participants,
                           seed=args.seed, timeout_s=60.0)
    return run_simulation(f"http://127.0.0.1:{port}", "bench-sim", cfg)


# ---------------------------------------------------------------- report


def _fmt(x: float) -> str:
    if x != x:
        return "n/a"
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def _yardstick_text(args: argparse.Namespace) -> str:
    ms = getattr(args, "yardstick_ms", None)
    if ms is None:
        return ""
    return (f"; the cores' speed (cpu_yardstick): the app's `GET /healthz` takes {ms:.3f} ms of CPU in one "
            f"process through WSGI")


def render(results: list[dict[str, object]], command: str, args: argparse.Namespace) -> str:
    from benchmarks.report import load_average, markdown_table

    rows = []
    for r in results:
        counts = r["counts"]
        for base, sub in r["runs"]:
            for phase, extra in ((base, ["", ""]), (sub, [counts["lost"], counts["duplicated"]])):
                row = phase.row()
                db_cpu = _fmt(max(row["cpu_ms_postgres"], 0.0)) if r["backend"] == "postgres" else "-"
                rows.append([r["backend"], row["phase"], _fmt(row["per_s"]), _fmt(row["p50_ms"]),
                             _fmt(row["p99_ms"]), row["errors"], *extra, _fmt(row["cpu_ms_server"]), db_cpu,
                             _fmt(row["cpu_ms_client"])])
        sim = r.get("simulate")
        if sim is not None:
            summary = sim.summary()
            cpu = {k: 1000 * v / max(sim.confirmed, 1) for k, v in r["simulate_cpu"].items()}
            rows.append([r["backend"], "full flow with study.simulated_participants (httpx threads): POST /participant/responses",
                         _fmt(summary["submissions_per_s"] or float("nan")), _fmt(summary["p50_ms"] or float("nan")),
                         _fmt(summary["p99_ms"] or float("nan")), sim.errors, counts["lost"], counts["duplicated"],
                         _fmt(cpu["server"]), _fmt(max(cpu["postgres"], 0.0)) if r["backend"] == "postgres" else "-",
                         _fmt(cpu["client"])])
    headers = ["database", "route and load", "requests/s", "p50 ms", "p99 ms", "errors", "lost",
               "duplicated", "server CPU ms/req", "PostgreSQL CPU ms/req", "client CPU ms/req"]
    load = load_average()
    servers = _sizing_text({r["backend"]: r["concurrency"] for r in results})
    lines = [
        f"Command: `{command}`",
        "",
        f"Machine: {os.cpu_count()} CPU cores shared by the server, PostgreSQL, the load generator and the "
        f"other work on the machine (1-minute load average {load:.1f} at the end of the run{_yardstick_text(args)}); {args.server}, "
        f"{servers}; {args.participants} participants at once, "
        f"{args.trials} responses each per load model ({args.participants * args.trials} submissions). Back to back: "
        f"every participant sends its next request as soon as the last one is answered (a closed loop with no "
        f"think time, so by Little's law mean latency = {args.participants} / throughput: p99 < 100 ms back to back "
        f"would need more than {args.participants * 10:,} responses/s, several times the no-op route's rate on these cores); "
        f"paced: the participants together offer a fixed rate (each sends every {args.participants}/rate s, "
        f"as people with think time do), the goal's load model; full flow: {args.participants} participants of study.simulated_participants (httpx, one "
        f"thread each) start, fetch each of {args.sim_trials} trials, answer it and complete (its rate counts only the responses, "
        f"over the whole run, and its CPU per response covers all the flow's requests; httpx in {args.participants} "
        f"threads costs the client far more CPU than the asyncio client, so this row is client-bound). The baseline makes as many calls to the no-op `/healthz` on the same "
        f"server in the same run. Lost = confirmed by the server but missing from the database; duplicated = "
        f"stored twice (same client_uuid or same trial), both counted in the database afterwards (over all "
        f"load models). CPU ms/req: CPU time used during the phase (from /proc) divided by its requests "
        f"(PostgreSQL: all its processes).",
        "",
        markdown_table(headers, rows),
        "",
    ]
    for r in results:
        base, sub = (p.row() for p in r["runs"][0])
        counts = r["counts"]
        per_sub = sub["cpu_ms_server"] + sub["cpu_ms_client"] + (max(sub["cpu_ms_postgres"], 0.0) if r["backend"] == "postgres" else 0)
        ceiling = 2000.0 / per_sub if per_sub > 0 else float("nan")
        errors = sum(p.errors for run in r["runs"] for p in run) + (r["simulate"].errors if r.get("simulate") else 0)
        clean = errors == 0 and counts["lost"] == 0 and counts["duplicated"] == 0
        at_goal = [run[1].row() for run, rate in zip(r["runs"][1:], args.paced_rates, strict=True) if rate == GOAL_RATE]
        sustained = [row for row in at_goal if row["per_s"] >= 0.99 * GOAL_RATE and row["p99_ms"] < 100]
        met = sub["per_s"] >= GOAL_RATE and bool(sustained) and clean
        sub_phase = r["runs"][0][1]
        used = sum(sub_phase.cpu.values()) / sub_phase.wall_s if sub_phase.wall_s else float("nan")
        at_goal_text = (f"offered {GOAL_RATE:,.0f}/s by the {args.participants} participants, it answered "
                        f"{_fmt(at_goal[0]['per_s'])}/s with p99 {_fmt(at_goal[0]['p99_ms'])} ms"
                        if at_goal else f"no paced run at {GOAL_RATE:,.0f}/s (add it to --paced-rate)")
        lines.append(
            f"- {r['backend']}: back to back the server stored {_fmt(sub['per_s'])} submissions/s "
            f"({sub['per_s'] / base['per_s']:.0%} of the no-op route's rate; server + database + client used "
            f"{used:.2f} of the {os.cpu_count()} cores); {at_goal_text}; {counts['stored']} responses stored, "
            f"{counts['lost']} lost, {counts['duplicated']} duplicated, {errors} errors; CPU-bound ceiling on 2 "
            f"otherwise idle cores (2,000 ms / CPU ms per submission) ~{_fmt(ceiling)}/s; {GOAL} (judged as: "
            f"back-to-back capacity >= 1,000/s, and offered 1,000/s, >= 99% of it answered with p99 < 100 ms): "
            f"**{'met' if met else 'not met'}**."
        )
        if r.get("profile"):
            shares = ", ".join(f"{name} {share:.0%}" for name, share in r["profile"]["shares"])
            lines.append(f"  Where the worker threads' wall-clock time goes (py-spy samples of all the server's threads "
                         f"during an extra, profiled back-to-back pass at {_fmt(r['profile']['per_s'])}/s; "
                         f"'pool checkout' includes waiting for a free pooled connection): {shares}.")
        samples = [s for run in r["runs"] for p in run for s in p.error_samples] + r["start"].error_samples
        if samples:
            lines.append(f"  First errors: {'; '.join(s.replace('|', '/') for s in samples[:3])}")
    return "\n".join(lines)


# ---------------------------------------------------------------- before/after in one run


@contextmanager
def checkout(rev: str) -> Iterator[Path]:
    """The tree of git revision `rev` in a temporary folder (git archive; nothing else of the
    repository is touched)."""
    with tempfile.TemporaryDirectory(prefix="dp-bench-rev-") as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev],
                                 capture_output=True, check=False)
        if archive.returncode != 0:
            raise SystemExit(f"--compare: git archive {rev!r} failed: {archive.stderr.decode().strip()}")
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        yield Path(tmp)


# The app's CPU for one `GET /healthz` in one process through WSGI (best of 5 x 2,000 calls): the
# route hardly changes, so this measures the cores; runs on faster or slower cores can be told apart.
_YARDSTICK = r"""
import io, sys, time
from study import create_app
from study.migrate import upgrade
url = sys.argv[1]
upgrade(url)
app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-secret", "STIMULI_ROOT": sys.argv[2]})
status = []
def environ():
    return {"REQUEST_METHOD": "GET", "PATH_INFO": "/healthz", "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1:8000", "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": True,
            "wsgi.run_once": False, "wsgi.version": (1, 0)}
best = float("inf")
for _ in range(5):
    c0 = time.process_time()
    for _ in range(2000):
        b"".join(app.wsgi_app(environ(), lambda s, h, e=None: status.append(s)))
    best = min(best, 1000 * (time.process_time() - c0) / 2000)
assert all(s.startswith("200") for s in status), set(status)
print(best)
"""


def cpu_yardstick(code: Path = ROOT) -> float:
    """CPU ms of one `GET /healthz` of the app in checkout `code`, in one process through WSGI on a
    fresh SQLite database (_YARDSTICK): how fast the cores were when a run's figures were made."""
    with tempfile.TemporaryDirectory(prefix="dp-bench-yardstick-") as tmp:
        work = Path(tmp)
        return float(run_in_checkout(code, _YARDSTICK, [f"sqlite:///{work / 'y.db'}", str(work / "store")],
                                     "yardstick run", STUDY_INSTANCE_PATH=str(work / "instance")))


# Run with the checkout under test first on sys.path: the app's CPU per submission through WSGI
# (Flask's test client), without the HTTP server, the load generator or the machine's other work.
_IN_PROCESS = r"""
import json, sys, time, uuid
from sqlalchemy import create_engine, text
from study import create_app
url, slug, n, warm = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-secret", "STIMULI_ROOT": sys.argv[5]})
client = app.test_client()
tokens = [client.post(f"/api/v1/studies/{slug}/participants", json={"consent": True}).get_json()["token"]
          for _ in range(n)]
engine = create_engine(url)
with engine.connect() as conn:
    rows = conn.execute(text("SELECT p.token, t.id FROM trials t JOIN participants p ON p.id = t.participant_id "
                             "ORDER BY p.id, t.\"index\"")).all()
engine.dispose()
trials = {}
for token, trial_id in rows:
    trials.setdefault(token, []).append(trial_id)
bodies = [(token, {"client_uuid": str(uuid.uuid4()), "trial_id": trial_id, "answer": "fake",
                   "rt_ms": 640.5, "exposure_ms": 500})
          for k in range(max(map(len, trials.values()))) for token in tokens
          if k < len(trials[token]) for trial_id in [trials[token][k]]]
def post(token, body):
    res = client.post("/api/v1/participant/responses", json=body, headers={"X-Participant-Token": token})
    assert res.status_code == 201, res.get_data(as_text=True)
for token, body in bodies[:warm]:
    post(token, body)
measured, per_batch = bodies[warm:], []
size = max(1, len(measured) // 6)
for k in range(5):
    c0 = time.process_time()
    for token, body in measured[k * size:(k + 1) * size]:
        post(token, body)
    per_batch.append(1000 * (time.process_time() - c0) / size)
import cProfile, pstats
profile = cProfile.Profile()
profile.enable()
for token, body in measured[5 * size:6 * size]:
    post(token, body)
profile.disable()
calls = pstats.Stats(profile).total_calls / size
print(json.dumps({"cpu_ms": min(per_batch), "batches": per_batch, "calls": calls}))
"""


def in_process_cpu(backend: str, args: argparse.Namespace, code: Path) -> dict[str, float]:
    """CPU ms per submission of the app from checkout `code`, in one process through WSGI, on a
    fresh `backend` database: the participants each answer all their trials, round-robin, in
    five batches; the cheapest batch counts (other work on the machine only adds CPU time).
    Also the Python function calls per submission of a sixth batch (cProfile): a count that the
    machine's load does not change."""
    with tempfile.TemporaryDirectory(prefix=f"dp-bench-cpu-{backend}-") as tmp:
        work = Path(tmp)
        url, drop = fresh_database(backend, work)
        try:
            slug = make_study_with(code, url, work, args.trials, slug="bench")
            last = run_in_checkout(code, _IN_PROCESS, [url, slug, str(args.participants), str(args.participants),
                                                       str(work / "store")],
                                   "in-process run", STUDY_INSTANCE_PATH=str(work / "instance"))
        finally:
            if drop is not None:
                drop()
    measured = json.loads(last)
    return {"wsgi_cpu_ms": measured["cpu_ms"], "calls": measured["calls"]}


def _goal_phase(result: dict[str, object], args: argparse.Namespace) -> Phase | None:
    """The submissions paced at the goal's 1,000/s in a run, if it had them."""
    for (_, sub), rate in zip(result["runs"][1:], args.paced_rates, strict=True):
        if rate == GOAL_RATE:
            return sub
    return None


def ab_row(result: dict[str, object], args: argparse.Namespace) -> dict[str, float]:
    """The figures compared between the codes: back-to-back rate and server CPU per submission,
    and at 1,000/s offered the answered rate, p99, and server and PostgreSQL CPU per submission."""
    back = result["runs"][0][1].row()
    goal = _goal_phase(result, args)
    paced = goal.row() if goal is not None else {}
    nan = float("nan")
    return {
        "back_per_s": back["per_s"], "back_cpu_ms": back["cpu_ms_server"],
        "per_s": paced.get("per_s", nan), "p99_ms": paced.get("p99_ms", nan),
        "cpu_ms": paced.get("cpu_ms_server", nan),
        "pg_cpu_ms": max(paced.get("cpu_ms_postgres", nan), 0.0) if result["backend"] == "postgres" else nan,
        "errors": sum(p.errors for run in result["runs"] for p in run),
        "lost": result["counts"]["lost"], "duplicated": result["counts"]["duplicated"],
    }


def render_ab(runs: list[tuple[str, str, int, dict[str, float]]], command: str, intro: str,
              labels: tuple[str, str], column: str, args: argparse.Namespace) -> str:
    """`runs`: (backend, label, round, ab_row) in the order they ran; labels = (baseline,
    candidate), e.g. ("before", "after") or ("gunicorn", "granian"). The in-process columns
    appear when the rows have them (they measure the code, not the server)."""
    from benchmarks.report import markdown_table

    base, cand = labels
    in_process = all("wsgi_cpu_ms" in r for *_, r in runs)
    headers = ["database", column, "round", "paced at 1,000/s: answered /s", "p99 ms",
               "server CPU ms/submission", "PostgreSQL CPU ms/submission", "back to back /s",
               "server CPU ms/submission back to back",
               *(["in-process CPU ms/submission", "in-process Python calls/submission"] if in_process else []),
               "errors, lost, duplicated"]
    rows = [[backend, label, k + 1, _fmt(r["per_s"]), _fmt(r["p99_ms"]), _fmt(r["cpu_ms"]),
             _fmt(r["pg_cpu_ms"]) if backend == "postgres" else "-", _fmt(r["back_per_s"]),
             _fmt(r["back_cpu_ms"]),
             *([f"{r['wsgi_cpu_ms']:.3f}", f"{r['calls']:,.0f}"] if in_process else []),
             f"{r['errors']}, {r['lost']}, {r['duplicated']}"]
            for backend, label, k, r in runs]
    keys = ["per_s", "p99_ms", "cpu_ms", "back_per_s", "back_cpu_ms", *(["wsgi_cpu_ms", "calls"] if in_process else [])]
    ratio_rows = []
    summary = []
    for backend in dict.fromkeys(b for b, _, _, _ in runs):
        def med(label: str, key: str, backend: str = backend) -> float:
            vals = [r[key] for b, c, _, r in runs if b == backend and c == label]
            return float(np.median(vals)) if vals else float("nan")

        ratios = {key: med(cand, key) / med(base, key) for key in keys}
        ratio_rows.append([backend, *(f"{ratios[k]:.3f}" if k in ("wsgi_cpu_ms", "calls") else f"{ratios[k]:.2f}"
                                      for k in keys)])
        rounds = [r for b, c, _, r in runs if b == backend and c == cand]
        met = all(r["per_s"] >= 0.99 * GOAL_RATE and r["p99_ms"] < 100 and r["errors"] == 0
                  and r["lost"] == 0 and r["duplicated"] == 0 for r in rounds)
        wsgi = (f", {ratios['wsgi_cpu_ms']:.3f}x in one process through WSGI ({ratios['calls']:.3f}x Python calls)"
                if in_process else "")
        summary.append(f"- {backend}: {cand}/{base} (medians over rounds) {ratios['per_s']:.2f}x answered/s and "
                       f"{ratios['cpu_ms']:.2f}x server CPU per submission at 1,000/s offered, "
                       f"{ratios['back_per_s']:.2f}x submissions/s and {ratios['back_cpu_ms']:.2f}x server CPU "
                       f"per submission back to back{wsgi}; the goal ({args.participants} participants offering "
                       f"1,000 submissions/s, >= 99% answered with p99 < 100 ms, nothing lost or stored twice) "
                       f"in every round of {cand}: **{'met' if met else 'not met'}**.")
    ratio_headers = ["database", "answered /s at 1,000/s", "p99", "server CPU/submission at 1,000/s",
                     "back to back /s", "server CPU/submission back to back",
                     *(["in-process CPU/submission", "in-process Python calls/submission"] if in_process else [])]
    return "\n".join([
        f"Command: `{command}`",
        "",
        intro + " CPU ms/submission: CPU time of the server's processes (PostgreSQL: all its processes) "
        "during the phase, from /proc, per submission (clock ticks of 10 ms over the phase's submissions)."
        + (" In-process: the app alone in one process through WSGI (Flask's test client), the same "
           "participants answering all their trials on a fresh database after one warm-up answer each, in "
           "five batches; CPU time per submission of the cheapest batch (other work on the machine only adds "
           "to it): the steadiest measure of the code's own cost on a busy machine." if in_process else ""),
        "",
        markdown_table(headers, rows),
        "",
        f"Ratios {cand} / {base} (medians over rounds; answered/s and back to back: higher is better; "
        "p99 and CPU: lower is better):",
        "",
        markdown_table(ratio_headers, ratio_rows),
        "",
        *summary,
    ])


def _alternate(variants: list[tuple[str, Path, str]], backends: list[str], args: argparse.Namespace,
               in_process: bool) -> list[tuple[str, str, int, dict[str, float]]]:
    """`args.rounds` rounds of every (label, code, server) variant on each backend, each on a
    fresh database, in alternating order (the first variant first in odd rounds) so that all
    meet the same drift of the shared machine."""
    runs = []
    args.ab_concurrency = {}
    for k in range(args.rounds):
        for backend in backends:
            for label, root, server in variants if k % 2 == 0 else variants[::-1]:
                print(f"[study bench] round {k + 1}, {backend}, {label}", flush=True)
                result = run_backend(backend, args, code=root, server=server)
                args.ab_concurrency[backend] = result["concurrency"]
                row = ab_row(result, args) | (in_process_cpu(backend, args, root) if in_process else {})
                runs.append((backend, label, k, row))
                print(f"  {runs[-1][3]}", flush=True)
    return runs


def _sizing_text(concurrency: dict[str, tuple[int, int]]) -> str:
    """'sqlite 8 workers x 1 threads, ...' from {backend: (workers, threads)}."""
    return ", ".join(f"{b} {w} workers x {th} threads" for b, (w, th) in concurrency.items())


def _load_text() -> str:
    from benchmarks.report import load_average

    return f"{os.cpu_count()} cores; 1-minute load average {load_average():.1f} at the end"


def compare(args: argparse.Namespace, backends: list[str], command: str) -> str:
    """Before (`args.compare`) against after (`args.after`, else the working tree), in
    `args.rounds` alternating rounds, both served by --server."""
    with ExitStack() as stack:
        before = stack.enter_context(checkout(args.compare))
        if args.after:
            after, head = stack.enter_context(checkout(args.after)), args.after
        else:
            after = ROOT
            head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                  capture_output=True, text=True, check=False).stdout.strip() or "HEAD"
            dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, check=False).stdout.strip()
            head += " and the working tree's changes" if dirty else ""
        runs = _alternate([("before", before, args.server), ("after", after, args.server)], backends, args, True)
    intro = (f"Before: `{args.compare}`; after: `{head}`. Each round runs both codes on fresh databases, in "
             f"alternating order (before first in odd rounds), so that both meet the same drift of the "
             f"shared machine ({_load_text()}). {args.server}, {_sizing_text(args.ab_concurrency)}; {args.participants} "
             f"participants at once, {args.trials} submissions each per load model; real-or-fake study without "
             f"staircase (PostgreSQL takes its one-round-trip statement).")
    return render_ab(runs, command, intro, ("before", "after"), "code", args)


def compare_servers(args: argparse.Namespace, backends: list[str], command: str) -> str:
    """gunicorn (the baseline) against granian serving the working tree's app, in `args.rounds`
    alternating rounds."""
    runs = _alternate([("gunicorn", ROOT, "gunicorn"), ("granian", ROOT, "granian")], backends, args, False)
    intro = (f"The same app (the working tree) and sizing served by gunicorn (gthread workers, HTTP parsed "
             f"in Python) and by granian (HTTP in Rust, the app in the same number of Python worker processes "
             f"and threads). Each round runs both servers on fresh databases, in alternating order (gunicorn "
             f"first in odd rounds), so that both meet the same drift of the shared machine ({_load_text()}). "
             f"{_sizing_text(args.ab_concurrency)}; {args.participants} participants at once, {args.trials} submissions each "
             f"per load model; real-or-fake study without staircase.")
    return render_ab(runs, command, intro, ("gunicorn", "granian"), "server", args)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks study", description=__doc__.split("\n")[0])
    parser.add_argument("--participants", type=int, default=200)
    parser.add_argument("--trials", type=int, default=50,
                        help="responses per participant and load model; a paced phase lasts "
                             "participants x trials / rate seconds (10 s at 1,000/s by default), long "
                             "enough that the last replies' latency barely moves its answered rate")
    parser.add_argument("--workers", type=int, default=None,
                        help="server worker processes (default: study.config.server_concurrency, as served)")
    parser.add_argument("--threads", type=int, default=None, help="threads per worker (default: likewise)")
    parser.add_argument("--paced-rate", default="1000,1250",
                        help="comma-separated submissions/s offered in the paced runs, one run each "
                             "(the goal is judged at 1000/s; empty: back to back only)")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-simulate", dest="simulate", action="store_false",
                        help="skip the full-flow run with study.simulated_participants")
    parser.add_argument("--sim-trials", type=int, default=3,
                        help="trials per participant in the full-flow run (httpx threads are slow)")
    parser.add_argument("--profile", action="store_true",
                        help="sample the server with py-spy during the back-to-back submissions")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    parser.add_argument("--compare", metavar="REV",
                        help="before/after in one run: the server from git revision REV against the "
                             "working tree, alternating; writes section study-ab")
    parser.add_argument("--after", metavar="REV",
                        help="with --compare: the after code from git revision REV (default: the working tree)")
    parser.add_argument("--rounds", type=int, default=2, help="with --compare or --compare-servers: rounds of both")
    parser.add_argument("--server", choices=SERVERS, default=DEFAULT_SERVER, help="HTTP server (study.serving)")
    parser.add_argument("--compare-servers", action="store_true",
                        help="gunicorn against granian on the working tree, alternating; writes section study-servers")
    args = parser.parse_args(argv)
    try:
        args.paced_rates = [float(r) for r in args.paced_rate.split(",") if r.strip()]
    except ValueError:
        parser.error(f"--paced-rate must be comma-separated numbers (got {args.paced_rate!r})")
    if any(r <= 0 for r in args.paced_rates):
        parser.error("--paced-rate values must be > 0")
    args.py_spy = find_py_spy() if args.profile else None
    if args.profile and args.py_spy is None:
        print("[study bench] --profile: py-spy not found (pip install py-spy, or set PY_SPY); no profile", flush=True)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    bad = [b for b in backends if b not in ("sqlite", "postgres")]
    if bad or args.participants < 1 or args.trials < 1 or args.sim_trials < 1:
        parser.error(f"--backends must name sqlite and/or postgres (got {bad})" if bad
                     else "--participants, --trials and --sim-trials must be >= 1")
    command = "python -m benchmarks study " + " ".join(shlex.quote(a) for a in argv)
    if args.compare or args.compare_servers:
        if args.rounds < 1:
            parser.error("--rounds must be >= 1")
        if args.compare and args.compare_servers:
            parser.error("--compare and --compare-servers: choose one")
        run, section = (compare, "study-ab") if args.compare else (compare_servers, "study-servers")
        text = run(args, backends, command.strip())
        print(text)
        if not args.no_write:
            from benchmarks.report import write_section

            write_section(section, text)
        return 0
    args.yardstick_ms = cpu_yardstick()
    print(f"[study bench] yardstick: GET /healthz takes {args.yardstick_ms:.3f} CPU ms in one process", flush=True)
    results = []
    for backend in backends:
        print(f"[study bench] {backend}: starting", flush=True)
        results.append(run_backend(backend, args))
        r = results[-1]
        print(f"[study bench] {backend}: start {r['start'].row()}", flush=True)
        for base, sub in r["runs"]:
            print(f"  {base.row()}\n  {sub.row()}", flush=True)
        if r.get("simulate"):
            print(f"  simulate {r['simulate'].summary()}", flush=True)
        print(f"  counts {r['counts']}", flush=True)
    text = render(results, command.strip(), args)
    print(text)
    if not args.no_write:
        from benchmarks.report import write_section

        write_section("study", text)
    return 0

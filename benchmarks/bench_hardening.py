"""Hardening of the live study at full size: load with faults, and bad input against a live server.

    python -m benchmarks hardening [--participants 1000] [--trials 5] [--backends sqlite,postgres]
                                   [--fuzz-examples 20] [--workers 2] [--threads 16]
                                   [--server granian|gunicorn] [--no-write]

1. Load and faults (benchmarks/hardening_load.py): N participants at once do whole studies through
   the server (study.serving) on 127.0.0.1; once all have started, faults hit the run -- SQLite: kill -9 of a
   worker, a 5 s write lock held by another connection, a 35 s one (beyond the app's 30 s busy
   timeout: writes fail until it goes), a restart of the whole server;
   PostgreSQL (a private cluster made with pg_createcluster, so a restart disturbs nobody): kill -9
   of a worker, `pg_ctlcluster ... restart`, a restart of the whole server. Clients go offline
   and come back, lose replies and resend, answer from two tabs at once. The database is counted
   afterwards: responses expected vs stored, lost, duplicated, participants able to finish.
2. Bad input (benchmarks/hardening_input.py): schemathesis cases from /api/v1/openapi.json (valid
   and invalid) with a participant's token, another's, and none, plus hand-made nasty bodies, all
   against the live server; counted: inputs tried, 5xx, answers that break the JSON error contract.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks.hardening_input import error_body_problem, fuzz
from benchmarks.hardening_load import LoadConfig, LoadReport, run_load
from benchmarks.servers import (
    DEFAULT_PG,
    AppServer,
    PgCluster,
    make_study,
    pg_database,
    server_env,
    why_no_pg_cluster,
)
from study.serving import DEFAULT_SERVER, SERVERS

NASTY = [
    ("deeply nested arrays", b"[" * 100_000, "application/json"),
    ("deeply nested objects", b'{"a":' * 50_000, "application/json"),
    ("3 MiB body", b'{"pad":"' + b"x" * (3 * 1024 * 1024) + b'"}', "application/json"),
    ("not UTF-8", b'{"a":"\xff\xfe"}', "application/json"),
    ("NaN literal", b'{"client_uuid":"3b241101-e2bb-4255-8caf-4136c566a962","trial_id":1,"rt_ms":NaN}', "application/json"),
    ("5000-digit integer", b'{"trial_id":' + b"9" * 5000 + b"}", "application/json"),
    ("form body", b"a=1&b=2", "application/x-www-form-urlencoded"),
    ("plain text", b"hello", "text/plain"),
    ("no content type", b"{}", ""),
    ("empty", b"", "application/json"),
    ("array body", b"[1,2,3]", "application/json"),
    ("NUL in a string", b'{"client_uuid":"\\u0000"}', "application/json"),
]
NASTY_PATHS = ["/api/v1/participant/responses", "/api/v1/participant/events", "/api/v1/participant/complete",
               "/api/v1/participant/classify", "/api/v1/studies/fuzz/participants"]


def run_bad_input(work: Path, examples: int, workers: int, threads: int,
                  server: str = DEFAULT_SERVER) -> dict[str, object]:
    """Schemathesis and the nasty bodies against a live server on a fresh SQLite study."""
    import httpx


    url = f"sqlite:///{work / 'fuzz.db'}"
    make_study(url, work, trials=200, task="clickme", slug="fuzz")
    env = server_env(url, work)
    t0 = time.perf_counter()
    with AppServer(env, workers, threads, work / "server-fuzz.log", server=server) as served:
        base = f"http://127.0.0.1:{served.port}"
        with httpx.Client(base_url=base, timeout=60) as c:
            tokens = [c.post("/api/v1/studies/fuzz/participants", json={"consent": True}).json()["token"]
                      for _ in range(2)]
            doc = c.get("/api/v1/openapi.json").json()
            nasty_failures, nasty_tried = [], 0
            statuses: dict[int, int] = {}
            for name, body, ctype in NASTY:
                for path in NASTY_PATHS:
                    headers = {"X-Participant-Token": tokens[0]} | ({"Content-Type": ctype} if ctype else {})
                    nasty_tried += 1
                    # An oversized body goes on a connection of its own: after a 413 the server
                    # may close the connection with the body unread (RFC 9110, 15.5.14), and a
                    # request reusing it would fail for that reason alone.
                    oversized = len(body) > 2 * 1024 * 1024
                    try:
                        if oversized:
                            with httpx.Client(base_url=base, timeout=60) as once:
                                res = once.post(path, content=body, headers=headers)
                        else:
                            res = c.post(path, content=body, headers=headers)
                    except httpx.TransportError as exc:
                        # A server may answer 413 and close before the client has sent it all.
                        if not oversized:
                            nasty_failures.append(f"{name} -> {path}: connection dropped ({exc})")
                        continue
                    try:
                        payload = res.json()
                    except ValueError:
                        payload = None
                    statuses[res.status_code] = statuses.get(res.status_code, 0) + 1
                    problem = error_body_problem(res.status_code, payload)
                    if problem:
                        nasty_failures.append(f"{name} -> {path}: {problem}")
        report = fuzz(doc, [{"X-Participant-Token": tokens[0]}, {"X-Participant-Token": tokens[1]}, {}],
                      examples, base_url=base)
    return {"schemathesis_tried": report.tried, "statuses": dict(sorted(report.statuses.items())),
            "operations": len(report.per_operation), "schemathesis_failures": report.failures,
            "nasty_tried": nasty_tried, "nasty_failures": nasty_failures, "nasty_statuses": dict(sorted(statuses.items())),
            "server_5xx": sum(v for k, v in (report.statuses + Counter(statuses)).items()
                              if k >= 500),
            "wall_s": time.perf_counter() - t0}


def run_backend(backend: str, args: argparse.Namespace) -> tuple[LoadReport | None, str]:
    """One load-and-fault run; returns the report (None if it could not run) and a note."""
    with tempfile.TemporaryDirectory(prefix=f"dp-hard-{backend}-") as tmp:
        work = Path(tmp)
        if backend == "sqlite":
            cfg = LoadConfig(participants=args.participants, trials=args.trials, task="clickme",
                             faults=("kill_worker", "sqlite_lock", "sqlite_lock_long", "restart"), lock_s=5.0,
                             workers=args.workers, threads=args.threads, seed=args.seed, server=args.server)
            return run_load(cfg, f"sqlite:///{work / 'load.db'}", work), ""
        why = why_no_pg_cluster()
        if why is None:
            with PgCluster() as pg:
                url, drop = pg_database(pg.url)
                try:
                    cfg = LoadConfig(participants=args.participants, trials=args.trials, task="realfake",
                                     faults=("kill_worker", "pg_restart", "restart"),
                                     workers=args.workers, threads=args.threads, seed=args.seed, server=args.server)
                    return run_load(cfg, url, work, pg=pg), "private cluster (pg_createcluster)"
                finally:
                    drop()
        server = os.environ.get("DP_TEST_POSTGRES_URL") or DEFAULT_PG
        url, drop = pg_database(server)
        try:
            cfg = LoadConfig(participants=args.participants, trials=args.trials, task="realfake",
                             faults=("kill_worker", "restart"), workers=args.workers, threads=args.threads,
                             seed=args.seed, server=args.server)
            return run_load(cfg, url, work), f"no PostgreSQL restart: {why}"
        finally:
            drop()


def render(reports: list[tuple[LoadReport, str]], bad: dict[str, object] | None, command: str,
           args: argparse.Namespace) -> str:
    from benchmarks.report import load_average, markdown_table

    rows = []
    for r, _ in reports:
        d = r.db
        faults = ", ".join(f"{f.name} {'ok' if f.ok else 'FAILED'}" for f in r.faults)
        server_5xx = sum(v for k, v in r.statuses.items() if isinstance(k, int) and k >= 500)
        rows.append([r.backend, r.config.participants, f"{r.completed}/{r.started}", faults,
                     d["expected_of_finishers"], d["responses"], d["lost"], d["duplicated"],
                     d["clicks_mismatch"], r.retries, server_5xx, r.statuses.get("network error", 0),
                     f"{r.lost_replies}/{r.offline_attempts}/{r.two_tab_pairs}",
                     f"{r.summary()['p50_ms']:.0f} / {r.summary()['p99_ms']:,.0f}", f"{r.wall_s:.0f}"])
    headers = ["database", "participants", "finished/started", "faults survived", "responses expected",
               "stored", "lost", "duplicated", "click mismatches", "client retries", "5xx seen",
               "network errors seen", "lost replies / offline tries / two-tab pairs", "p50 / p99 ms", "wall s"]
    load = load_average()
    lines = [
        f"Command: `{command}`",
        "",
        f"Machine: {os.cpu_count()} CPU cores shared by {args.server} ({args.workers} worker processes x "
        f"{args.threads} threads), the database, the load generator and other work (1-minute load average "
        f"{load:.1f} at the end). Each participant does {args.trials} trials over one keep-alive connection; "
        "faults are injected after every participant has started, at even shares of the answers, and "
        "each client retries network errors and 5xx with exponential backoff and the same client UUID. "
        "5xx seen: answers while the database was restarting or locked beyond the request (the client "
        "retried them). Counted in the database afterwards: expected = the finished participants' trials; "
        "lost = confirmed by the server but not stored; duplicated = two rows for one UUID or one trial.",
        "",
        markdown_table(headers, rows),
        "",
    ]
    for r, note in reports:
        problems = r.problems()
        verdict = "**0 lost, 0 duplicated, every participant finished**" if not problems else (
            "**FAILED**: " + "; ".join(problems))
        lines.append(f"- {r.backend}{' (' + note + ')' if note else ''}: {verdict}. "
                     f"Two-tab answers (status pairs): {dict(r.two_tab_statuses)}; starts whose reply was "
                     f"cut and that resumed with their start_key: {r.start_resumed}; refused: {r.start_lost}.")
        if r.client_errors:
            lines.append(f"  First client errors: {'; '.join(e.replace('|', '/') for e in r.client_errors[:3])}")
    if bad is not None:
        fails = list(bad["schemathesis_failures"]) + list(bad["nasty_failures"])
        lines += [
            "",
            f"Bad input against the live server: {bad['schemathesis_tried']:,} schemathesis requests over "
            f"{bad['operations']} operations ({args.fuzz_examples} valid and {args.fuzz_examples} invalid "
            f"examples per operation, each with a participant's token, another participant's token and none) "
            f"and {bad['nasty_tried']} hand-made nasty bodies (deep nesting, 3 MiB, NaN, non-UTF-8, wrong "
            f"content types); schemathesis statuses {bad['statuses']}, nasty-body statuses {bad['nasty_statuses']}; 5xx: {bad['server_5xx']}; answers breaking the JSON "
            f"error contract: {len(fails)}.",
        ]
        lines += [f"  - {f.replace('|', '/')[:300]}" for f in fails[:8]]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks hardening", description=__doc__.split("\n")[0])
    parser.add_argument("--participants", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--fuzz-examples", type=int, default=20, help="schemathesis examples per operation and mode")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--server", choices=SERVERS, default=DEFAULT_SERVER, help="HTTP server (study.serving)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if any(b not in ("sqlite", "postgres") for b in backends):
        parser.error("--backends: name sqlite and/or postgres")
    if not 1 <= args.participants <= 5000 or not 1 <= args.trials <= 200 or args.fuzz_examples < 0:
        parser.error("--participants must lie in [1, 5000], --trials in [1, 200], --fuzz-examples >= 0")
    command = ("python -m benchmarks hardening " + " ".join(shlex.quote(a) for a in argv)).strip()
    reports = []
    for backend in backends:
        print(f"[hardening] {backend}: {args.participants} participants with faults", flush=True)
        report, note = run_backend(backend, args)
        print(json.dumps(report.summary(), default=str), flush=True)
        reports.append((report, note))
    bad = None
    if args.fuzz_examples:
        print("[hardening] bad input against a live server", flush=True)
        with tempfile.TemporaryDirectory(prefix="dp-hard-fuzz-") as tmp:
            bad = run_bad_input(Path(tmp), args.fuzz_examples, args.workers, args.threads, args.server)
        print(json.dumps({k: v for k, v in bad.items() if "failures" not in k}, default=str), flush=True)
    text = render(reports, bad, command, args)
    print(text)
    if not args.no_write:
        from benchmarks.report import write_section

        write_section("hardening", text)
    failed = any(r.problems() for r, _ in reports) or (bad is not None and (
        bad["server_5xx"] or bad["schemathesis_failures"] or bad["nasty_failures"]))
    return 1 if failed else 0

"""Pieces of the study load benchmark that can be checked without a server."""

from __future__ import annotations

import asyncio
import threading

import pytest
from werkzeug.serving import make_server

from benchmarks.bench_study import Conn, Phase, baseline, summarise_profile


def test_profile_samples_are_split_into_categories():
    raw = "\n".join([
        "Flask.__call__ (app.py:1);post_response (e.py:2);DefaultDialect.do_execute (d.py:3) 6",
        "Flask.__call__ (app.py:1);Pool.connect (p.py:9);DefaultDialect.do_ping (d.py:3) 2",
        "Thread.run (t.py:1);_worker (concurrent/futures/thread.py:81) 1",
        "Flask.__call__ (app.py:1);json.dumps (j.py:1) 1",
        "not a sample line",
    ])
    shares = dict(summarise_profile(raw))
    assert shares == pytest.approx({
        "SQL statements in the driver (SQLite lock waits, PostgreSQL round trips)": 0.6,
        "pool checkout (new connections, pre-ping)": 0.2,
        "idle worker threads": 0.1,
        "application Python (Flask, SQLAlchemy, endpoint)": 0.1,
    })
    assert summarise_profile("") == []


def test_the_load_client_counts_calls_and_errors(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        async def go():
            conns = [Conn("127.0.0.1", server.server_port) for _ in range(3)]
            phase = await baseline(conns, 4)
            status, body = await conns[0].request("POST", "/api/v1/participant/responses", {"trial_id": 1})
            for c in conns:
                await c.close()
            return phase, status, body

        phase, status, body = asyncio.run(go())
    finally:
        server.shutdown()
        thread.join(5)
    assert (phase.ok, phase.errors, len(phase.latencies_ms)) == (12, 0, 12)
    assert status == 400 and b"error" in body  # a real JSON error read back over keep-alive
    assert isinstance(Phase("x").row()["per_s"], float)


def test_the_yardstick_times_the_apps_healthz_in_one_process():
    import argparse
    import math

    from benchmarks import bench_study

    ms = bench_study.cpu_yardstick()
    assert math.isfinite(ms) and 0 < ms < 1000  # the script itself asserts every call answered 200
    text = bench_study._yardstick_text(argparse.Namespace(yardstick_ms=ms))
    assert f"takes {ms:.3f} ms of CPU" in text
    assert bench_study._yardstick_text(argparse.Namespace()) == ""


def test_the_server_comparison_reports_median_ratios_and_the_goal():
    import argparse

    from benchmarks.bench_study import render_ab

    def row(per_s, p99, cpu, back, back_cpu):
        return {"per_s": per_s, "p99_ms": p99, "cpu_ms": cpu, "pg_cpu_ms": float("nan"), "back_per_s": back,
                "back_cpu_ms": back_cpu, "errors": 0, "lost": 0, "duplicated": 0}

    runs = [("sqlite", "gunicorn", 0, row(600, 400, 1.6, 700, 1.5)), ("sqlite", "granian", 0, row(995, 60, 1.2, 1400, 1.0)),
            ("sqlite", "granian", 1, row(998, 50, 1.0, 1600, 1.0)), ("sqlite", "gunicorn", 1, row(500, 500, 2.4, 900, 2.5))]
    args = argparse.Namespace(participants=200)
    text = render_ab(runs, "cmd", "intro.", ("gunicorn", "granian"), "server", args)
    # medians: granian 996.5/s vs gunicorn 550/s, p99 55 vs 450 ms, CPU 1.1 vs 2.0 ms
    assert "| sqlite | 1.81 | 0.12 | 0.55 | 1.88 | 0.50 |" in text
    assert "granian/gunicorn (medians over rounds) 1.81x answered/s" in text and "**met**" in text
    assert "in-process" not in text  # no such columns without in-process figures
    runs[1] = ("sqlite", "granian", 0, row(995, 120, 1.2, 1400, 1.0))  # one round's p99 over 100 ms
    assert "**not met**" in render_ab(runs, "cmd", "intro.", ("gunicorn", "granian"), "server", args)

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

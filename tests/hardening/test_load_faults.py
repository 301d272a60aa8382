"""Whole studies by many participants at once through each server (granian, the default, and
gunicorn), with faults during the run:
nothing lost, nothing stored twice, every participant able to finish (counted in the database).

CI size: 50 participants on SQLite, 30 on PostgreSQL; `python -m benchmarks hardening` runs the
same harness at full size."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from benchmarks.hardening_load import LoadConfig, count_database, run_load
from benchmarks.servers import pg_database
from study.serving import SERVERS, worker_died_marker


def _check(report) -> None:
    summary = report.summary()
    assert report.problems() == [], summary
    assert all(f.ok for f in report.faults) and len(report.faults) == len(report.config.faults), summary
    d = report.db
    n = report.config.participants
    assert d["participants"] == n and d["completed"] == n, summary
    assert d["responses"] == n * report.config.trials == report.confirmed, summary
    assert d["lost"] == 0 and d["duplicated"] == 0 and d["stored_unconfirmed"] == 0, summary
    # The faults and the misbehaving clients really happened.
    assert report.retries > 0, summary
    # Two tabs: one stores (201), the other gets the stored result (200); both 200 when a fault
    # cut the 201 and its retry came back as a repeat. Never two 201s.
    assert report.two_tab_pairs > 0 and "(200, 201)" in report.two_tab_statuses, summary
    assert set(report.two_tab_statuses) <= {"(200, 201)", "(200, 200)"}, summary
    assert report.lost_replies > 0 and report.offline_attempts > 0, summary


@pytest.mark.slow
@pytest.mark.parametrize("server", SERVERS)
def test_sqlite_survives_worker_kill_lock_and_restart(tmp_path: Path, server: str) -> None:
    cfg = LoadConfig(participants=50, trials=5, task="clickme",
                     faults=("kill_worker", "sqlite_lock", "restart"), lock_s=2.0, seed=1, server=server)
    report = run_load(cfg, f"sqlite:///{tmp_path / 'load.db'}", tmp_path)
    _check(report)
    assert report.db["clicks"] > 0 and report.db["clicks_mismatch"] == 0
    # Killed workers and restarts cut connections, but the app itself never answered 5xx: the
    # SQLite lock was waited out inside the busy timeout.
    assert not [k for k in report.statuses if isinstance(k, int) and k >= 500], report.statuses
    log = (tmp_path / "server.log").read_text()
    assert worker_died_marker(server) in log  # the server saw its worker die and replaced it


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("server", SERVERS)
def test_postgres_survives_worker_kill_and_database_restart(tmp_path: Path, pg_cluster, server: str) -> None:
    url, drop = pg_database(pg_cluster.url)
    try:
        cfg = LoadConfig(participants=30, trials=5, task="realfake",
                         faults=("kill_worker", "pg_restart", "restart"), seed=2, server=server)
        report = run_load(cfg, url, tmp_path, pg=pg_cluster)
        _check(report)
        # While PostgreSQL restarted, the app said 503 (retry), never a bare 500.
        assert 500 not in report.statuses, report.statuses
    finally:
        drop()


def test_counting_detects_loss_duplication_and_stuck_progress(tmp_path: Path) -> None:
    """The harness's counts are not blind: remove a stored response, fake a confirmation that was
    never stored, and break a click count -- each shows up."""
    url = f"sqlite:///{tmp_path / 'load.db'}"
    cfg = LoadConfig(participants=4, trials=3, task="clickme", faults=(), offline_share=0,
                     lost_reply_share=0, two_tab_share=0.5, seed=3)
    report = run_load(cfg, url, tmp_path)
    assert report.problems() == [], report.summary()
    con = sqlite3.connect(tmp_path / "load.db")
    with con:
        rid, uuid_ = con.execute("SELECT id, client_uuid FROM responses ORDER BY id LIMIT 1").fetchone()
        con.execute("DELETE FROM clicks WHERE response_id = ?", (rid,))
        con.execute("DELETE FROM responses WHERE id = ?", (rid,))
        rid2 = con.execute("SELECT id FROM responses ORDER BY id LIMIT 1").fetchone()[0]
        con.execute("DELETE FROM clicks WHERE id = (SELECT min(id) FROM clicks WHERE response_id = ?)", (rid2,))
    con.close()
    counts = count_database(url, "hardening", report.confirmed_uuids | {"never-stored"})
    assert counts["lost"] == 2  # the deleted response and the fake confirmation
    assert counts["clicks_mismatch"] == 1
    assert counts["progress_mismatch"] == 1
    assert counts["stored_of_finishers"] == counts["expected_of_finishers"] - 1


def test_config_refuses_unknown_faults() -> None:
    with pytest.raises(ValueError, match="faults"):
        LoadConfig(faults=("unplug",)).check()
    with pytest.raises(ValueError, match="server"):
        LoadConfig(server="waitress").check()


def test_a_database_outage_is_503_with_retry_after(app, start) -> None:
    """While the database is unreachable or locked, the API says so (503, Retry-After, the JSON
    error body) instead of a bare 500, so that clients and proxies know to retry."""
    import sqlite3

    from sqlalchemy import event

    token = start("clickme")["token"]
    engine = app.extensions["sqlalchemy_engine"]

    def fail(conn, cursor, statement, parameters, context, executemany):
        raise sqlite3.OperationalError("database is locked")

    event.listen(engine, "before_cursor_execute", fail)
    try:
        res = app.test_client().get("/api/v1/participant/trial", headers={"X-Participant-Token": token})
    finally:
        event.remove(engine, "before_cursor_execute", fail)
    assert res.status_code == 503 and res.headers.get("Retry-After") == "2"
    assert res.get_json()["error"]["message"] and res.get_json()["error"]["field"] is None
    ok = app.test_client().get("/api/v1/participant/trial", headers={"X-Participant-Token": token})
    assert ok.status_code == 200

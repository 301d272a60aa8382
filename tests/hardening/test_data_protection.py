"""Data protection: pseudonymised exports by default, deleting one participant on request, and
a consistent online backup with a tested restore (SQLite and PostgreSQL)."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import uuid
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hardening_helpers import SECRET

from study import backup, privacy
from study.export import pseudonym

H = "X-Participant-Token"


def _do_trials(client: FlaskClient, token: str, n: int) -> None:
    for _ in range(n):
        trial = client.get("/api/v1/participant/trial", headers={H: token}).get_json()["trial"]
        body = {"client_uuid": str(uuid.uuid4()), "trial_id": trial["id"], "rt_ms": 500.0,
                "clicks": [{"x": 0.1, "y": 0.2, "t": 10}, {"x": 0.3, "y": 0.4, "t": 20}, {"x": 0.5, "y": 0.5, "t": 30}]}
        assert client.post("/api/v1/participant/responses", json=body, headers={H: token}).status_code == 201
    ev = {"events": [{"kind": "blur", "t": 1.0}, {"kind": "focus", "t": 2.0}]}
    assert client.post("/api/v1/participant/events", json=ev, headers={H: token}).status_code == 201


@pytest.fixture
def three(client: FlaskClient, start) -> dict[str, str]:
    """Three ClickMe participants (external ids -> tokens), each with 2 answers and 2 events."""
    out = {}
    for pid in ("PID-ALICE-0001", "PID-BOB-0002", "PID-CAROL-0003"):
        token = start("clickme", pid=pid)["token"]
        _do_trials(client, token, 2)
        out[pid] = token
    return out


def _counts(app: Flask) -> dict[str, int]:
    return backup.table_counts(app.config["DATABASE_URL"])


# ---------------------------------------------------------------- pseudonymised exports


def test_exports_are_pseudonymised_by_default(app: Flask, logged_in: FlaskClient, three: dict[str, str],
                                              tmp_path: Path) -> None:
    from study.cli import export_cmd

    expected = {pseudonym(pid, SECRET) for pid in three}
    web = logged_in.get("/researcher/studies/clickme/export/trials.csv").get_data(as_text=True)
    runner = app.test_cli_runner()
    res = runner.invoke(export_cmd, ["clickme", "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    files = "".join(p.read_text() for p in (tmp_path / "out").iterdir() if p.suffix in (".csv", ".json"))
    for text in (web, files):
        assert all(pid not in text for pid in three), "a raw external id leaked into a default export"
        assert all(tok not in text for tok in three.values())
        assert expected <= set(__import__("re").findall(r"\b[0-9a-f]{16}\b", text))
    # Raw ids only when asked for explicitly.
    raw = logged_in.get("/researcher/studies/clickme/export/trials.csv?raw=1").get_data(as_text=True)
    assert all(pid in raw for pid in three)


# ---------------------------------------------------------------- deletion on request


def test_delete_one_participant_keeps_everyone_else(app: Flask, three: dict[str, str], client: FlaskClient) -> None:
    from study import db

    before = _counts(app)
    with app.app_context():
        s = db.session()
        p = privacy.find_participant(s, "clickme", external_id="PID-BOB-0002")
        done = privacy.delete_participant(s, p)
    assert (done.trials, done.responses, done.clicks, done.events) == (4, 2, 6, 2)
    after = _counts(app)
    assert after["participants"] == before["participants"] - 1
    assert after["trials"] == before["trials"] - 4
    assert after["responses"] == before["responses"] - 2
    assert after["clicks"] == before["clicks"] - 6
    assert after["browser_events"] == before["browser_events"] - 2
    assert after["stimuli"] == before["stimuli"] and after["studies"] == before["studies"]
    # Bob's token is dead; Alice and Carol carry on.
    assert client.get("/api/v1/participant/trial", headers={H: three["PID-BOB-0002"]}).status_code == 401
    _do_trials(client, three["PID-ALICE-0001"], 1)
    con = sqlite3.connect(app.config["DATABASE_URL"].split("///", 1)[1])
    assert con.execute("SELECT count(*) FROM participants WHERE external_id = 'PID-BOB-0002'").fetchone()[0] == 0
    orphans = con.execute("SELECT count(*) FROM clicks WHERE response_id NOT IN (SELECT id FROM responses)").fetchone()
    con.close()
    assert orphans[0] == 0


def test_delete_by_pseudonym_and_refusals_name_the_field(app: Flask, three: dict[str, str]) -> None:
    from study import db

    with app.app_context():
        s = db.session()
        p = privacy.find_participant(s, "clickme", pseudonym=pseudonym("PID-CAROL-0003", SECRET), secret_key=SECRET)
        assert p.external_id == "PID-CAROL-0003"
        for kwargs, field in (({"external_id": "nobody"}, "external_id"), ({}, "participant"),
                              ({"external_id": "x", "participant_id": "y"}, "participant"),
                              ({"pseudonym": "0" * 16}, "secret_key")):
            with pytest.raises(privacy.PrivacyError) as err:
                privacy.find_participant(s, "clickme", **kwargs)
            assert err.value.field == field
        with pytest.raises(privacy.PrivacyError) as err:
            privacy.find_participant(s, "no-such-study", external_id="PID-CAROL-0003")
        assert err.value.field == "slug"


def test_delete_participant_command(app: Flask, three: dict[str, str]) -> None:
    runner = app.test_cli_runner()
    res = runner.invoke(privacy.delete_participant_cmd, ["clickme", "--external-id", "PID-ALICE-0001", "--yes"])
    assert res.exit_code == 0 and "2 responses" in res.output, res.output
    res = runner.invoke(privacy.delete_participant_cmd, ["clickme", "--external-id", "PID-ALICE-0001", "--yes"])
    assert res.exit_code == 2 and "--external-id" in res.output and "Traceback" not in res.output
    assert _counts(app)["participants"] == 2


# ---------------------------------------------------------------- backup and restore


def test_sqlite_online_backup_while_writing_and_restore(app: Flask, three: dict[str, str], tmp_path: Path,
                                                        start) -> None:
    """A backup taken while another thread keeps answering trials is consistent (integrity
    check, every response with its clicks), and restoring it brings those rows back."""
    url = app.config["DATABASE_URL"]
    writer = app.test_client()
    stop = threading.Event()
    errors: list[str] = []

    def keep_writing() -> None:
        try:
            while not stop.is_set():
                token = writer.post("/api/v1/studies/clickme/participants", json={"consent": True}).get_json()["token"]
                _do_trials(writer, token, 4)
        except Exception as exc:  # surfaced below
            errors.append(repr(exc))

    t = threading.Thread(target=keep_writing)
    t.start()
    try:
        infos = [backup.backup(url, tmp_path / f"b{i}.db") for i in range(3)]
    finally:
        stop.set()
        t.join()
    assert not errors, errors
    for info in infos:
        con = sqlite3.connect(info.path)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # Consistent: every response has all its clicks and a trial; progress matches answers.
        bad = con.execute("SELECT count(*) FROM responses r WHERE r.n_clicks != "
                          "(SELECT count(*) FROM clicks c WHERE c.response_id = r.id)").fetchone()[0]
        lag = con.execute("SELECT count(*) FROM participants p WHERE p.current_index != "
                          "(SELECT count(*) FROM responses r WHERE r.participant_id = p.id)").fetchone()[0]
        con.close()
        assert bad == 0 and lag == 0
        assert info.path.stat().st_mode & 0o077 == 0  # not readable by other users
    snapshot = backup.table_counts(f"sqlite:///{infos[-1].path}")
    assert snapshot["responses"] >= 6
    # Lose data, then restore.
    from study import db

    live = _counts(app)
    assert live["responses"] >= snapshot["responses"]  # the writer went on after the last backup
    with app.app_context():
        s = db.session()
        privacy.delete_participant(s, privacy.find_participant(s, "clickme", external_id="PID-ALICE-0001"))
    assert _counts(app)["participants"] == live["participants"] - 1
    app.extensions["sqlalchemy_engine"].dispose()
    backup.restore(url, infos[-1].path)
    assert _counts(app) == snapshot
    assert app.test_client().get("/api/v1/participant/trial", headers={H: three["PID-ALICE-0001"]}).status_code == 200


def test_restore_refuses_what_is_not_a_backup(app: Flask, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.db"
    bogus.write_bytes(b"hello")
    for src, field in ((bogus, "backup"), (tmp_path / "missing.db", "backup")):
        with pytest.raises(backup.BackupError) as err:
            backup.restore(app.config["DATABASE_URL"], src)
        assert err.value.field == field
    with pytest.raises(backup.BackupError) as err:
        backup.backup("mysql://x/y", tmp_path / "x")
    assert err.value.field == "DATABASE_URL"


def test_backup_and_restore_commands(app: Flask, three: dict[str, str], tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    res = runner.invoke(backup.backup_cmd, ["--out", str(tmp_path / "cli.db")])
    assert res.exit_code == 0 and "sqlite backup written" in res.output, res.output
    before = _counts(app)
    runner.invoke(privacy.delete_participant_cmd, ["clickme", "--external-id", "PID-BOB-0002", "--yes"])
    res = runner.invoke(backup.restore_cmd, [str(tmp_path / "cli.db"), "--yes"])
    assert res.exit_code == 0 and f"responses {before['responses']}" in res.output, res.output
    assert _counts(app) == before
    res = runner.invoke(backup.restore_cmd, [str(tmp_path / "nothing.db"), "--yes"])
    assert res.exit_code == 2 and "backup:" in res.output


@pytest.mark.postgres
def test_postgres_backup_and_restore_round_trip(postgres_url: str, tmp_path: Path) -> None:
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        pytest.skip("pg_dump/pg_restore not installed")
    from benchmarks.servers import make_study, pg_database
    from study import create_app, db

    url, drop = pg_database(postgres_url)
    try:
        make_study(url, tmp_path, trials=3, task="clickme", slug="clickme")
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET, "STIMULI_ROOT": str(tmp_path / "store")})
        client = app.test_client()
        tokens = []
        for i in range(3):
            res = client.post("/api/v1/studies/clickme/participants",
                              json={"platform": "prolific", "PROLIFIC_PID": f"PG-{i}", "consent": True})
            tokens.append(res.get_json()["token"])
            _do_trials(client, tokens[-1], 2)
        before = backup.table_counts(url)
        info = backup.backup(url, tmp_path / "pg.dump")
        assert info.backend == "postgresql" and info.path.read_bytes()[:5] == b"PGDMP"
        assert b"dp:dp" not in info.path.read_bytes()
        with app.app_context():
            s = db.session()
            privacy.delete_participant(s, privacy.find_participant(s, "clickme", external_id="PG-1"))
            s.close()
        assert backup.table_counts(url)["participants"] == 2
        app.extensions["sqlalchemy_engine"].dispose()
        backup.restore(url, info.path)
        assert backup.table_counts(url) == before
        # The restored database serves: PG-1 resumes where it was and can finish.
        _do_trials(client, tokens[1], 1)
        app.extensions["sqlalchemy_engine"].dispose()
    finally:
        drop()

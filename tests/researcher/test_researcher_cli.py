"""The CLI: every command through click's runner, bad input -> message naming it, exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
from researcher_helpers import PASSWORD, create_demo_study, populate
from sqlalchemy import select

from study import db
from study.auth import authenticate
from study.tables import Study

ROOT = Path(__file__).resolve().parents[2]


def test_create_researcher(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-researcher", "Grace@Example.org", "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert authenticate(db.session(), "grace@example.org", PASSWORD) is not None
    result = runner.invoke(args=["create-researcher", "grace@example.org", "--password", PASSWORD])
    assert result.exit_code == 2 and "email: a researcher with email grace@example.org already exists" in result.output
    result = runner.invoke(args=["create-researcher", "x@example.org", "--password", "short"])
    assert result.exit_code == 2 and "password: must have at least 8 characters" in result.output


def test_create_study_status_and_export(app, stimuli_dir, tmp_path):
    runner = app.test_cli_runner()
    manifest = stimuli_dir(2, 2, practice=1)
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"title": "CLI study", "n_catch": 0, "conditions": {"slow": {"exposure_ms": 800}}}))
    result = runner.invoke(args=["create-study", "--manifest", str(manifest), "--settings", str(settings), "--slug", "cli-rf"])
    assert result.exit_code == 0, result.output
    assert "study cli-rf created (realfake, draft): 5 stimuli, conditions slow" in result.output
    for status in ("live", "paused", "live", "closed"):
        result = runner.invoke(args=["study-status", "cli-rf", status])
        assert result.exit_code == 0 and f"study cli-rf is {status}" in result.output
    result = runner.invoke(args=["study-status", "cli-rf", "live"])
    assert result.exit_code == 2 and "status: a closed study cannot become live" in result.output
    with app.app_context():
        sid = db.session().scalar(select(Study.id).where(Study.slug == "cli-rf"))
    populate(app, sid, 3, 4, clicks_each=2)
    out = tmp_path / "export"
    result = runner.invoke(args=["export", "cli-rf", "--out", str(out), "--format", "parquet"])
    assert result.exit_code == 0, result.output
    assert "trials 12, clicks 24, events 0" in result.output
    assert pq.read_table(out / "trials.parquet").num_rows == 12
    assert (out / "data_dictionary.json").exists()
    result = runner.invoke(args=["export", "cli-rf", "--out", str(tmp_path / "raw"), "--no-pseudonymise"])
    assert result.exit_code == 0
    assert "PID0000-0" in (tmp_path / "raw" / "trials.csv").read_text()


def test_bad_input_names_the_field_with_exit_code_2(app, stimuli_dir, tmp_path):
    runner = app.test_cli_runner()
    manifest = stimuli_dir(2, 2)
    lines = manifest.read_text().splitlines()
    lines[2] = lines[2].replace(",real,", ",photo,")
    bad = manifest.parent / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    cases = [
        (["create-study", "--manifest", str(bad)], "row 2, column source"),
        (["create-study", "--manifest", str(tmp_path / "none.csv")], "file not found"),
        (["create-study", "--manifest", str(manifest), "--slug", "Not A Slug"], "slug"),
        (["create-study", "--manifest", str(manifest), "--task", "draw"], "'--task'"),
        (["study-status", "nope", "live"], "SLUG: no study called 'nope'"),
        (["study-status", "nope", "open"], "STATUS"),
        (["export", "nope", "--out", str(tmp_path)], "SLUG: no study called 'nope'"),
        (["export", "nope", "--out", str(tmp_path), "--format", "xlsx"], "'--format'"),
        (["simulate", "nope", "--url", "ftp://x", "-n", "1"], "--url: must start with http"),
        (["simulate", "nope", "--url", "http://x", "-n", "0"], "'-n'"),
    ]
    settings = tmp_path / "s.toml"
    settings.write_text("click_budget = 0\n")
    cases.append((["create-study", "--manifest", str(manifest), "--settings", str(settings)], "click_budget: must be >= 1, got 0"))
    for args, message in cases:
        result = runner.invoke(args=args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_python_dash_m_study_entry_point(tmp_path, stimuli_dir):
    """`python -m study` in a fresh process: db-upgrade, create-study, a clean error."""
    db_url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {**os.environ, "DATABASE_URL": db_url, "SECRET_KEY": "k", "STIMULI_ROOT": str(tmp_path / "store")}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "study", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)

    up = run("db-upgrade")
    assert up.returncode == 0, up.stderr
    made = run("create-study", "--manifest", str(stimuli_dir(2, 2)), "--slug", "sub", "--live")
    assert made.returncode == 0, made.stderr
    assert "study sub created (realfake, live)" in made.stdout
    bad = run("study-status", "missing", "paused")
    assert bad.returncode == 2 and "no study called 'missing'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_commands_on_an_unmigrated_database_say_so(tmp_path):
    from study import create_app

    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}", "SECRET_KEY": "k"})
    result = app.test_cli_runner().invoke(args=["study-status", "demo", "live"])
    app.extensions["sqlalchemy_engine"].dispose()
    assert result.exit_code == 1
    assert "db-upgrade" in result.output and "Traceback" not in result.output


def test_create_study_helper_and_cli_agree(app, stimuli_dir):
    sid = create_demo_study(app, stimuli_dir(1, 1))
    assert sid > 0


def test_all_commands_are_registered(app):
    result = app.test_cli_runner().invoke(args=["--help"])
    for name in ("db-upgrade", "create-researcher", "create-study", "study-status", "export", "simulate",
                 "backup", "restore", "delete-participant"):
        assert name in result.output, name

"""Command line: `python -m study COMMAND ...` or `flask --app wsgi COMMAND ...`.

  db-upgrade                         bring the database to the newest schema (Alembic)
  create-researcher EMAIL [--password]
  create-study --manifest PATH [--settings FILE.json|.toml] [--slug S] [--title T] [--task T] [--live]
  study-status SLUG live|paused|closed
  export SLUG --out DIR [--format csv|parquet] [--no-pseudonymise]
  simulate SLUG --url http://127.0.0.1:PORT -n N --behaviour accurate|random|observer|clicker|dropout
  serve [--host H] [--port P] [--server granian|gunicorn] [--workers N] [--threads N] [--access-log]
  backup --out FILE / restore FILE --yes / delete-participant SLUG ...   (study/backup.py, study/privacy.py)
  prolific check|link|reconcile|approve|bonus ...   (study/platforms/prolific_cli.py)

Bad input ends with a message naming the argument or field and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select
from sqlalchemy.exc import OperationalError, ProgrammingError

from study import db
from study.cli_errors import InputError
from study.serving import DEFAULT_SERVER, SERVERS
from study.validation import PLATFORMS


def _db_errors(fn):
    """Turn a missing schema into a clear message instead of a traceback."""
    import functools

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (OperationalError, ProgrammingError) as exc:
            text = str(exc.orig) if getattr(exc, "orig", None) else str(exc)
            raise click.ClickException(
                f"database error: {text.splitlines()[0]} (is the database reachable and upgraded? "
                "run `python -m study db-upgrade`)"
            ) from None

    return wrapped


@click.command("db-upgrade")
@with_appcontext
def db_upgrade() -> None:
    """Bring the database (DATABASE_URL) to the newest schema."""
    from study import migrate

    migrate.upgrade(current_app.config["DATABASE_URL"])
    click.echo("database is at the newest schema")


@click.command("create-researcher")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="at least 8 characters; asked for when not given")
@with_appcontext
@_db_errors
def create_researcher(email: str, password: str) -> None:
    """Add a researcher account (the password is stored hashed)."""
    from study import auth

    s = db.session()
    try:
        researcher = auth.create_researcher(s, email, password)
        s.commit()
    except auth.AccountError as exc:
        s.rollback()
        raise InputError(f"{exc.field}: {exc.message}") from None
    click.echo(f"researcher {researcher.email} created (id {researcher.id})")


@click.command("create-study")
@click.option("--manifest", "manifest_path", required=True, type=click.Path(path_type=Path),
              help="manifest.csv or manifest.json; image paths are relative to its folder")
@click.option("--settings", "settings_path", type=click.Path(path_type=Path),
              help="JSON or TOML: task, title, conditions and task settings")
@click.option("--slug", help="URL name: lower-case letters, digits and '-'")
@click.option("--title")
@click.option("--task", type=click.Choice(["clickme", "realfake"]), help="overrides the settings file")
@click.option("--live", is_flag=True, help="open the study to participants at once")
@with_appcontext
@_db_errors
def create_study(manifest_path: Path, settings_path: Path | None, slug: str | None,
                 title: str | None, task: str | None, live: bool) -> None:
    """Create a study from a stimulus manifest (docs/formats.md section 1)."""
    from study import manifest

    try:
        raw = manifest.load_definition(settings_path)
        if task:
            raw["task"] = task
        definition = manifest.parse_definition(raw)
        rows = manifest.read_manifest(manifest_path)
        study = manifest.create_study(
            db.session(), rows, manifest_path.parent, definition,
            current_app.config["STIMULI_ROOT"], slug=slug, title=title, live=live,
        )
    except manifest.ManifestError as exc:
        raise InputError(str(exc)) from None
    click.echo(
        f"study {study.slug} created ({study.task}, {study.status}): {len(study.stimuli)} stimuli, "
        f"conditions {', '.join(c.name for c in study.conditions)}, completion code {study.completion_code}"
    )


def _study(slug: str):
    from study.tables import Study

    study = db.session().scalar(select(Study).where(Study.slug == slug))
    if study is None:
        raise InputError(f"SLUG: no study called {slug!r}")
    return study


@click.command("study-status")
@click.argument("slug")
@click.argument("status", metavar="STATUS", type=click.Choice(["live", "paused", "closed"]))
@with_appcontext
@_db_errors
def study_status(slug: str, status: str) -> None:
    """Open (live), pause or close a study."""
    from study.researcher.status import StatusError, set_status

    study = _study(slug)
    try:
        set_status(db.session(), study, status)
    except StatusError as exc:
        raise InputError(str(exc)) from None
    click.echo(f"study {slug} is {study.status}")


@click.command("export")
@click.argument("slug")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option("--no-pseudonymise", "raw_ids", is_flag=True, help="write raw external ids")
@click.option("--batch-size", type=click.IntRange(min=1), default=2000, show_default=True)
@with_appcontext
@_db_errors
def export_cmd(slug: str, out_dir: Path, fmt: str, raw_ids: bool, batch_size: int) -> None:
    """Write trials, clicks, events and data_dictionary.json (docs/formats.md section 3)."""
    from study import export

    _study(slug)
    try:
        counts = export.export_study(
            db.session(), slug, out_dir, fmt=fmt, secret_key=current_app.config["SECRET_KEY"],
            pseudonymise=not raw_ids, batch_size=batch_size,
        )
    except export.ExportError as exc:
        raise InputError(str(exc)) from None
    except OSError as exc:
        raise InputError(f"--out: cannot write to {out_dir}: {exc.strerror}") from None
    rows = ", ".join(f"{k} {v}" for k, v in counts.items())
    click.echo(f"exported {slug} to {out_dir} ({fmt}): {rows}")


@click.command("simulate")
@click.argument("slug")
@click.option("--url", required=True, help="base URL of a running server, e.g. http://127.0.0.1:5000")
@click.option("-n", "n", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--behaviour", type=click.Choice(["accurate", "random", "observer", "clicker", "dropout"]),
              default="random", show_default=True)
@click.option("--concurrency", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--dprime", type=float, default=1.5, show_default=True, help="observer's d'")
@click.option("--criterion", type=float, default=0.0, show_default=True, help="observer's c")
@click.option("--dropout-rate", type=click.FloatRange(0, 1), default=0.5, show_default=True)
@click.option("--platform", type=click.Choice(PLATFORMS), default="prolific")
@click.option("--wait", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="seconds to wait for the server's /healthz (a server that is still starting)")
@with_appcontext
@_db_errors
def simulate_cmd(slug: str, url: str, n: int, behaviour: str, concurrency: int, seed: int,
                 dprime: float, criterion: float, dropout_rate: float, platform: str, wait: float) -> None:
    """Run N simulated participants through the real HTTP API of a running server."""
    from study import simulated_participants

    if not url.startswith(("http://", "https://")):
        raise InputError("--url: must start with http:// or https://")
    _wait_for_server(url.rstrip("/"), wait)
    study = _study(slug)
    cfg = simulated_participants.SimulationConfig(
        behaviour=behaviour, n=n, concurrency=concurrency, seed=seed, dprime=dprime,
        criterion=criterion, dropout_rate=dropout_rate, platform=platform,
    )
    truth = simulated_participants.truth_from_db(db.session(), study.id, current_app.config["STIMULI_ROOT"])
    db.session().close()  # do not hold a connection while the simulation runs
    result = simulated_participants.run_simulation(url.rstrip("/"), slug, cfg, truth)
    click.echo(json.dumps(result.summary(), indent=2))
    if result.started == 0:
        raise click.ClickException(f"no participant could start at {url} (see first_errors)")


def _wait_for_server(url: str, wait_s: float) -> None:
    """Poll `url/healthz` once every 0.2 s until it answers 200, for at most `wait_s` seconds."""
    import time

    import httpx

    deadline = time.monotonic() + wait_s
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() >= deadline:
            raise InputError(f"--url: no server answered {url}/healthz within {wait_s:g} s")
        time.sleep(0.2)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on (0.0.0.0: every interface)")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--server", type=click.Choice(SERVERS), default=DEFAULT_SERVER, show_default=True,
              help="HTTP server (study/serving.py says why granian)")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="worker processes [default: by database and cores, study.config.server_concurrency]")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Python threads per worker [default: likewise]")
@click.option("--access-log/--no-access-log", default=False, show_default=True, help="log every request")
def serve_cmd(host: str, port: int, server: str, workers: int | None, threads: int | None, access_log: bool) -> None:
    """Serve the app (wsgi:app, reading DATABASE_URL and the rest from the environment) in the
    foreground; the server replaces this process, so Ctrl-C and SIGTERM stop it directly."""
    import os
    import shutil

    from study.serving import default_sizing, server_command

    _check_schema()
    auto_workers, auto_threads = default_sizing()
    workers, threads = workers or auto_workers, threads or auto_threads
    argv = server_command(server, host, port, workers, threads, access_log=access_log)
    if shutil.which(argv[0]) is None:
        raise InputError(f"--server: {server} is not installed in this environment (pip install {server})")
    click.echo(f"serving on http://{host}:{port} with {server} ({workers} worker process(es) x "
               f"{threads} thread(s))", err=True)
    os.execv(argv[0], argv)


def _check_schema() -> None:
    """Refuse to serve a database that is reachable but not at the newest schema (every API call
    would answer 503); one that cannot be reached now is served, since it may come back."""
    from study.config import configured_database_url
    from study.db import make_engine
    from study.migrate import at_head

    engine = make_engine(configured_database_url())
    try:
        ready = at_head(engine)
    except OperationalError as exc:
        click.echo(f"warning: DATABASE_URL: cannot reach the database now ({str(exc.orig).splitlines()[0]}); "
                   "serving anyway, the API answers 503 until it is back", err=True)
        return
    finally:
        engine.dispose()
    if not ready:
        raise InputError("DATABASE_URL: the database is not at the newest schema; run `python -m study "
                         "db-upgrade` first")


COMMANDS = (db_upgrade, create_researcher, create_study, study_status, export_cmd, simulate_cmd, serve_cmd)


def register_commands(group: click.Group) -> None:
    """Add the study commands to `group` (app.cli or the `python -m study` group), with the
    data-protection ones of study/backup.py and study/privacy.py."""
    from study.backup import backup_cmd, restore_cmd
    from study.platforms.prolific_cli import prolific_group
    from study.privacy import delete_participant_cmd

    for command in (*COMMANDS, backup_cmd, restore_cmd, delete_participant_cmd, prolific_group):
        group.add_command(command)


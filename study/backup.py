"""Consistent online backups of the study database, and their restore.

- SQLite: the backup API (`sqlite3.Connection.backup`) copies the database page by page inside a
  read transaction, so the copy is one consistent state even while server workers write (WAL);
  the copy is checked with `PRAGMA integrity_check`. Restore copies a backup into the database
  file with the same API (stop the server first).
- PostgreSQL: `pg_dump --format=custom` (one snapshot, consistent while the study runs); restore
  with `pg_restore --clean --if-exists --no-owner --single-transaction`. The password travels in
  PGPASSWORD, never on a command line or in a log.

CLI: `python -m study backup --out FILE` and `python -m study restore FILE --yes`.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click
from flask.cli import with_appcontext

from study.cli_errors import InputError

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"


class BackupError(ValueError):
    """A backup or restore that cannot be done; `field` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    backend: str  # sqlite | postgresql
    bytes: int


def _sqlite_path(database_url: str) -> Path:
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if not url.database or url.database == ":memory:":
        raise BackupError("DATABASE_URL", "an in-memory SQLite database cannot be backed up")
    return Path(url.database)


def _backend(database_url: str) -> str:
    if database_url.startswith("sqlite"):
        return "sqlite"
    if database_url.startswith("postgresql"):
        return "postgresql"
    raise BackupError("DATABASE_URL", "only sqlite:// and postgresql:// databases are supported")


def _pg_args(database_url: str) -> tuple[list[str], dict[str, str]]:
    """libpq connection arguments and environment (password in PGPASSWORD) for pg_dump/pg_restore."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    args = ["--dbname", url.database or ""]
    if url.host:
        args += ["--host", url.host]
    if url.port:
        args += ["--port", str(url.port)]
    if url.username:
        args += ["--username", url.username]
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return args, env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(name, f"{name} is not installed (Debian: postgresql-client)")
    return path


def _run(cmd: list[str], env: dict[str, str], what: str) -> None:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600, check=False)
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip().splitlines()
        raise BackupError(what, f"{Path(cmd[0]).name} failed: {message[-1] if message else proc.returncode}")


def backup(database_url: str, out: str | Path) -> BackupInfo:
    """Write a consistent copy of the live database to `out` (an SQLite file or a pg_dump
    custom-format archive); the file appears only when complete."""
    out = Path(out)
    backend = _backend(database_url)
    if out.exists() and out.is_dir():
        raise BackupError("out", f"{out} is a folder; name a file")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".backup-", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if backend == "sqlite":
            source = _sqlite_path(database_url)
            if not source.is_file():
                raise BackupError("DATABASE_URL", f"no SQLite database at {source}")
            src = sqlite3.connect(source, timeout=60)  # only read: the backup API never writes it
            dst = sqlite3.connect(tmp)
            try:
                src.backup(dst)
                if dst.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                    raise BackupError("out", "the copy failed SQLite's integrity check")
                dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            finally:
                dst.close()
                src.close()
        else:
            args, env = _pg_args(database_url)
            _run([_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(tmp), *args], env, "pg_dump")
        os.chmod(tmp, 0o600)  # it holds participants' data
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return BackupInfo(out, backend, out.stat().st_size)


def restore(database_url: str, source: str | Path) -> None:
    """Replace the database's contents with the backup at `source` (stop the server first)."""
    source = Path(source)
    backend = _backend(database_url)
    if not source.is_file():
        raise BackupError("backup", f"no backup file at {source}")
    with source.open("rb") as fh:
        head = fh.read(16)
    if backend == "sqlite":
        if head != SQLITE_MAGIC:
            raise BackupError("backup", "not an SQLite database file")
        target = _sqlite_path(database_url)
        target.parent.mkdir(parents=True, exist_ok=True)
        src = sqlite3.connect(source)
        try:
            if src.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise BackupError("backup", "the backup failed SQLite's integrity check")
            dst = sqlite3.connect(target, timeout=60)
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
        return
    if not head.startswith(PGDUMP_MAGIC):
        raise BackupError("backup", "not a pg_dump custom-format archive")
    args, env = _pg_args(database_url)
    _run([_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction",
          "--exit-on-error", *args, str(source)], env, "pg_restore")


def table_counts(database_url: str) -> dict[str, int]:
    """Rows per table of the study schema (to compare a database with its restored backup)."""
    from sqlalchemy import func, select

    from study.db import make_engine
    from study.tables import Base

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return {t.name: conn.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}
    finally:
        engine.dispose()


@click.command("backup")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="file to write (SQLite copy or pg_dump archive)")
@with_appcontext
def backup_cmd(out: Path) -> None:
    """A consistent online backup of DATABASE_URL (safe while the study runs)."""
    from flask import current_app


    try:
        info = backup(current_app.config["DATABASE_URL"], out)
    except BackupError as exc:
        raise InputError(f"{exc.field}: {exc.message}") from None
    click.echo(f"{info.backend} backup written to {info.path} ({info.bytes:,} bytes)")


@click.command("restore")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="replace the database without asking")
@with_appcontext
def restore_cmd(source: Path, yes: bool) -> None:
    """Replace DATABASE_URL's contents with a backup (stop the server first)."""
    from flask import current_app


    url = current_app.config["DATABASE_URL"]
    if not yes:
        click.confirm("Replace the whole database with this backup?", abort=True)
    current_app.extensions["sqlalchemy_engine"].dispose()
    try:
        restore(url, source)
    except BackupError as exc:
        raise InputError(f"{exc.field}: {exc.message}") from None
    counts = table_counts(url)
    click.echo("restored: " + ", ".join(f"{k} {v}" for k, v in counts.items()))

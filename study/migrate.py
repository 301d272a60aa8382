"""Database migrations with Alembic (environment and revisions in study/migrations).

    python -m study.migrate upgrade [DATABASE_URL]   # to head; default: the app's DATABASE_URL
    python -m study.migrate regenerate               # rewrite the initial revision from the ORM
                                                     # (0002_export_views, hand-written, stays)

The project keeps a single initial revision while the schema is young; `regenerate` rebuilds it
by autogenerating against an empty SQLite database, and tests/study/test_migrations.py checks
that the revision's schema equals the ORM's metadata on SQLite and PostgreSQL.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
INITIAL_REVISION = "0001_initial"


def alembic_config(database_url: str) -> Config:
    """An Alembic Config for `database_url` without an alembic.ini (the URL is never
    interpolated, so passwords with '%' are safe)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database at `database_url` to `revision` (default: the newest)."""
    command.upgrade(alembic_config(database_url), revision)


def regenerate_initial() -> Path:
    """Autogenerate the initial revision anew from study.models; returns its path. Later
    hand-written revisions (0002_export_views: SQL views) are kept."""
    versions = MIGRATIONS_DIR / "versions"
    for old in versions.glob("0001_*.py"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        # The later revisions step aside while Alembic autogenerates against an empty database.
        later = [p for p in versions.glob("*.py") if p.name != "__init__.py"]
        for p in later:
            p.rename(Path(tmp) / p.name)
        try:
            cfg = alembic_config(f"sqlite:///{Path(tmp) / 'empty.db'}")
            script = command.revision(
                cfg, message="initial schema", autogenerate=True, rev_id=INITIAL_REVISION
            )
        finally:
            for p in later:
                (Path(tmp) / p.name).rename(p)
    return Path(script.path)  # type: ignore[union-attr]


def main(argv: list[str]) -> int:
    if argv[:1] == ["upgrade"] and len(argv) <= 2:
        if len(argv) == 2:
            url = argv[1]
        else:
            import os

            from study.config import default_database_url

            url = os.environ.get("DATABASE_URL", default_database_url())
        upgrade(url)
        print("database at head")
        return 0
    if argv == ["regenerate"]:
        print(f"wrote {regenerate_initial()}")
        return 0
    print("usage: python -m study.migrate upgrade [DATABASE_URL] | regenerate", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

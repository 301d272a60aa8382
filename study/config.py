"""One place for the study app's configuration: defaults, environment, overrides.

Environment variables (all optional):
  DATABASE_URL   SQLAlchemy URL; default: SQLite file data/study.db in WAL mode
  DATABASE_POOL_SIZE  pooled connections per pool and process (>= threads per worker); 40
                 (PostgreSQL: two pools, the answers' autocommit one and the rest's)
  SECRET_KEY     signs session cookies; default: created once in the instance folder
  STIMULI_ROOT   folder that stimulus paths in a manifest are relative to; default: data/stimuli
  FEEDBACK_CLASSIFIER      the ClickMe feedback checkpoint for every study (operator's choice)
  FEEDBACK_CLASSIFIER_DIR  folder a study's own feedback_classifier setting must lie in; data/
  SESSION_COOKIE_SECURE  "1" behind HTTPS
  TRUSTED_PROXIES  number of reverse proxies in front (X-Forwarded-For/Proto); 0
  FEEDBACK_CLASSIFIER  checkpoint of the ClickMe feedback classifier for every study (else each
                 study's `feedback_classifier` setting; relative paths from the project root)
  ANSWER_LANE    "0" serves participants' answers through Flask's request machinery too,
                 instead of study/api/answer_lane.py (same replies, more CPU); default "1"
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "data"


def default_database_url() -> str:
    return f"sqlite:///{DATA_DIR / 'study.db'}"


def configured_database_url() -> str:
    """DATABASE_URL when it is set and not empty, else the default SQLite file: the database a
    server started now serves (sizing it, checking its schema)."""
    return os.environ.get("DATABASE_URL") or default_database_url()


def load_secret_key(instance_path: str | os.PathLike) -> str:
    """Read SECRET_KEY from the environment, else from instance/secret_key (created once)."""
    env = os.environ.get("SECRET_KEY")
    if env:
        return env
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole to a private temp file, then linked into place: workers starting at the same
    # moment either win the link or read the winner's complete key, never a half-written one.
    tmp = path.with_name(f".secret_key.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()


def server_concurrency(database_url: str, cpus: int) -> tuple[int, int]:
    """The server's (workers, threads per worker) for this database on `cpus` cores (granian and
    gunicorn alike; study.serving).

    SQLite: single-threaded workers, 4 per core. Every write holds the database's write lock
    (study.db.SqliteWriteLock); a holder that has to win the GIL back from its own process's
    other threads between SQLite calls keeps all writers waiting, which capped 4 x 4 workers at
    ~1,000 submissions/s, while 8 x 1 reached ~1,200/s with a third less CPU per submission.
    PostgreSQL: 4 threads per worker, 2 workers per core, so that a worker has work while its
    threads wait on the database's round trips (8 x 1 fell to ~840/s). Those figures are
    gunicorn's on the 2-core machine; under granian, 4 x 4, 8 x 1, 6 x 2 and 8 x 2 all answered
    PostgreSQL at 1,000/s offered with p99 of 290-340 ms in one sweep, none clearly best.
    """
    cpus = max(cpus, 1)
    if database_url.startswith("sqlite"):
        return 4 * cpus, 1
    return 2 * cpus, 4


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def build_config(instance_path: str | os.PathLike) -> dict:
    """The app's configuration from defaults and the environment."""
    return {
        "DATABASE_URL": configured_database_url(),
        "DATABASE_POOL_SIZE": int(os.environ.get("DATABASE_POOL_SIZE", "40")),
        "SECRET_KEY": load_secret_key(instance_path),
        "STIMULI_ROOT": os.environ.get("STIMULI_ROOT", str(DATA_DIR / "stimuli")),
        "FEEDBACK_CLASSIFIER": os.environ.get("FEEDBACK_CLASSIFIER") or None,
        # Studies may name a feedback checkpoint only inside this folder (loading unpickles).
        "FEEDBACK_CLASSIFIER_DIR": os.environ.get("FEEDBACK_CLASSIFIER_DIR", str(DATA_DIR)),
        "TRUSTED_PROXIES": int(os.environ.get("TRUSTED_PROXIES", "0")),
        "SESSION_COOKIE_HTTPONLY": True,
        # A researcher's login lasts a working day, not Flask's default of 31 days.
        "PERMANENT_SESSION_LIFETIME": dt.timedelta(hours=12),
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _truthy(os.environ.get("SESSION_COOKIE_SECURE")),
        "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,
        "JSON_SORT_KEYS": False,
        "ANSWER_LANE": _truthy(os.environ.get("ANSWER_LANE", "1")),
    }

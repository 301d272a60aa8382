"""gunicorn's settings for the study app, read from the working directory by `gunicorn wsgi:app`
(and by `python -m study serve --server gunicorn`; the default server is granian, see
study/serving.py); command-line flags override them.

gthread workers keep participants' connections alive between requests. How many workers and
threads depends on the database (study.config.server_concurrency, measured in BENCHMARKS.md,
section study): SQLite 4 single-threaded workers per core, PostgreSQL 2 workers per core with 4
threads each. WEB_CONCURRENCY and GUNICORN_THREADS override them. On PostgreSQL at most workers
x threads connections are open per host: keep it under the server's max_connections (100 by
default), or put PgBouncer in front.
"""

import os

from study.config import default_database_url, server_concurrency

_workers, _threads = server_concurrency(os.environ.get("DATABASE_URL") or default_database_url(),
                                        os.cpu_count() or 1)

wsgi_app = "wsgi:app"
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY") or _workers)
threads = int(os.environ.get("GUNICORN_THREADS") or _threads)
keepalive = 30
graceful_timeout = 5

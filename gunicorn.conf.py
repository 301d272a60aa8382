"""gunicorn's settings for the study app, read from the working directory by `gunicorn wsgi:app`
(and by `python -m study serve --server gunicorn`; the default server is granian, see
study/serving.py); command-line flags override them.

gthread workers keep participants' connections alive between requests. How many workers and
threads depends on the database (study.serving.default_sizing, by
study.config.server_concurrency, whose docstring says where its figures come from): SQLite 4
single-threaded workers per core, PostgreSQL 2 workers per core with 4 threads each. WEB_CONCURRENCY and GUNICORN_THREADS override them. On PostgreSQL at most workers
x threads connections are open per host: keep it under the server's max_connections (100 by
default), or put PgBouncer in front.
"""

import os

from study.serving import KEEPALIVE_S, default_sizing

_workers, _threads = default_sizing()

wsgi_app = "wsgi:app"
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY") or _workers)
threads = int(os.environ.get("GUNICORN_THREADS") or _threads)
keepalive = KEEPALIVE_S
graceful_timeout = 5

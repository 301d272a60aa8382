"""gunicorn's settings for the study app, read from the working directory by `gunicorn wsgi:app`
(and by `python -m experiments demo`); command-line flags override them.

gthread workers keep participants' connections alive between requests; a few threads per
process and two processes per core served the most submissions with the shortest tail on the
2-core development machine (BENCHMARKS.md, section study: 4 x 4 against 2 x 32 and 2 x 8).
On PostgreSQL, workers x threads connections are open at most: keep it under the server's
max_connections (100 by default), or put PgBouncer in front.
"""

import os

wsgi_app = "wsgi:app"
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * (os.cpu_count() or 1))
threads = int(os.environ.get("GUNICORN_THREADS") or 4)
keepalive = 30
graceful_timeout = 5

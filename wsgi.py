"""The WSGI app the servers run (`python -m study serve`: granian, or gunicorn): `wsgi:app`."""

from study import create_app

app = create_app()

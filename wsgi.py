"""Entry point for gunicorn: `gunicorn wsgi:app`."""

from study import create_app

app = create_app()

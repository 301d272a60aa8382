"""A test's app served over real HTTP on 127.0.0.1 (werkzeug, threaded), and what the browser
tests do with it: watch the console for Content-Security-Policy violations, log a researcher in."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from werkzeug.serving import make_server


@contextmanager
def served(app) -> Iterator[str]:
    """Serve `app` for the block; yields its base URL, then stops the server and closes the
    app's database connections."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        engine = app.extensions.get("sqlalchemy_engine")
        if engine is not None:
            engine.dispose()


def watch_csp(page) -> list[str]:
    """The console messages of `page` that report a Content-Security-Policy violation, as they
    come (a test asserts the list stays empty)."""
    seen: list[str] = []
    page.on("console", lambda m: seen.append(m.text) if "Content Security Policy" in m.text else None)
    return seen


def log_in(page, url: str, path: str, email: str, password: str) -> None:
    """Open the researcher page `path`; the app sends the browser to the login form; fill it and
    wait until the app has sent it back to `path`."""
    page.goto(url + path)
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(url + path)

"""`python -m study simulate --wait S` waits for a server that is still starting, and names
--url when none answers in time."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from study.cli import _wait_for_server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_server_is_one_line_naming_url(app):
    port = _free_port()
    t0 = time.monotonic()
    result = app.test_cli_runner().invoke(
        args=["simulate", "nope", "--url", f"http://127.0.0.1:{port}", "-n", "1", "--wait", "0.5"])
    assert result.exit_code == 2
    assert f"--url: no server answered http://127.0.0.1:{port}/healthz within 0.5 s" in result.output
    assert "Traceback" not in result.output
    assert 0.4 < time.monotonic() - t0 < 10


def test_waits_for_a_server_that_starts_late():
    port = _free_port()

    class Health(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    servers = []

    def start_later():
        time.sleep(0.6)
        servers.append(ThreadingHTTPServer(("127.0.0.1", port), Health))
        servers[0].serve_forever()

    threading.Thread(target=start_later, daemon=True).start()
    t0 = time.monotonic()
    _wait_for_server(f"http://127.0.0.1:{port}", 10)
    assert time.monotonic() - t0 >= 0.5
    servers[0].shutdown()

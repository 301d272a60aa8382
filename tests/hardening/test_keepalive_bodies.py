"""A request body that an endpoint ignores must not break the keep-alive connection it came on:
under gunicorn, the next request on that connection was dropped without an answer. Checked on
each server the app ships with."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from benchmarks.servers import AppServer, make_study, server_env
from study.serving import SERVERS

P = "/api/v1/participant"


@pytest.mark.parametrize("server", SERVERS)
def test_ignored_bodies_leave_the_connection_usable(tmp_path: Path, server: str) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    make_study(url, tmp_path, trials=4, task="clickme", slug="keep")
    body = b'{"a":' * 50_000  # 250 kB that no endpoint can use
    with AppServer(server_env(url, tmp_path), 2, 16, tmp_path / "server.log", server=server) as served, \
            httpx.Client(base_url=f"http://127.0.0.1:{served.port}", timeout=30) as client:
        token = client.post("/api/v1/studies/keep/participants", json={"consent": True}).json()["token"]
        headers = {"X-Participant-Token": token, "Content-Type": "application/json"}
        answers = []
        for _ in range(3):
            for path in (f"{P}/responses", f"{P}/events", f"{P}/complete", f"{P}/classify"):
                res = client.post(path, content=body, headers=headers)  # a drop raises here
                answers.append((path, res.status_code, res.json()["error"]["message"]))
            res = client.request("GET", f"{P}/trial", headers=headers, content=body)
            answers.append(("trial", res.status_code, res.json()["trial"]["index"]))
    assert {status for path, status, _ in answers if path != "trial"} <= {400, 409}
    assert [a for a in answers if a[0] == f"{P}/complete"][0][1] == 409  # body ignored, not parsed
    assert all(a[1:] == (200, 0) for a in answers if a[0] == "trial")

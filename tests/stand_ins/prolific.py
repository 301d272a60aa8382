"""A local stand-in for Prolific's researcher API, for tests (this machine cannot reach Prolific).

It follows the published API (https://docs.prolific.com/api-reference) for the calls the app
makes: the paths under /api/v1/, the `Authorization: Token <token>` check (401 otherwise),
404 for unknown ids and paths, the study object's `completion_codes`, the submission statuses
(ACTIVE, AWAITING REVIEW, APPROVED, RETURNED, TIMED-OUT, REJECTED, SCREENED OUT), the list's
pagination (`results`, `_links.next.href`, `meta.count`, limit/offset), the idempotent
transition call and the two bonus calls, of which pay pays again on every call, as the
documentation warns. State lives in memory; `fail_next` makes a call answer an error status
once, `drop_next` processes a call and then closes the connection without an answer.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PREFIX = "/api/v1/"
_ids = itertools.count(1)


def new_id() -> str:
    """A 24-hex-digit id, like Prolific's (unique within the process)."""
    return hashlib.sha1(str(next(_ids)).encode()).hexdigest()[:24]


@dataclass
class StandIn:
    """The stand-in's state, readable by the tests."""

    token: str
    page_size: int = 2
    studies: dict[str, dict[str, Any]] = field(default_factory=dict)
    submissions: dict[str, dict[str, Any]] = field(default_factory=dict)
    bulks: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    fail_next: dict[tuple[str, str], int] = field(default_factory=dict)  # (method, path prefix) -> status
    drop_next: set[tuple[str, str]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def add_study(self, name: str, codes: list[tuple[str, str]]) -> str:
        """A study with completion codes [(code, code_type)]; its id."""
        sid = new_id()
        self.studies[sid] = {
            "id": sid, "name": name, "internal_name": name, "status": "ACTIVE",
            "completion_codes": [{"code": c, "code_type": t, "actor": "participant",
                                  "actions": [{"action": "MANUALLY_REVIEW"}]} for c, t in codes],
        }
        return sid

    def add_submission(self, study_id: str, participant_id: str, status: str,
                       code: str | None = None) -> str:
        sub_id = new_id()
        self.submissions[sub_id] = {
            "id": sub_id, "study_id": study_id, "participant": participant_id, "status": status,
            "started_at": "2026-01-01T10:00:00Z",
            "completed_at": None if status in ("ACTIVE", "RETURNED", "TIMED-OUT") else "2026-01-01T10:20:00Z",
            "entered_code": code, "bonus_payments": [],
        }
        return sub_id

    def bonuses_paid(self, submission_id: str) -> list[int]:
        return list(self.submissions[submission_id]["bonus_payments"])


def _error(status: int, title: str, detail: Any) -> tuple[int, Any]:
    return status, {"error": {"status": status, "title": title, "detail": detail}}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        state = self.server.state
        split = urlsplit(self.path)
        path, query = split.path, parse_qs(split.query)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        with state.lock:
            state.calls.append((method, path))
            injected = next((s for (m, p), s in state.fail_next.items()
                             if m == method and path.startswith(p)), None)
            if injected is not None:
                state.fail_next = {k: v for k, v in state.fail_next.items()
                                   if not (k[0] == method and path.startswith(k[1]))}
                status, body = _error(injected, "Injected", f"stand-in answers {injected}")
                return self._send(status, body, retry_after=injected == 429)
            if self.headers.get("Authorization") != f"Token {state.token}":
                return self._send(*_error(401, "Unauthorized", "Invalid token."))
            try:
                payload = json.loads(raw) if raw else {}
            except ValueError:
                return self._send(*_error(400, "Bad Request", "body is not JSON"))
            status, body = _route(state, method, path, query, payload)
            drop = next(((m, p) for m, p in state.drop_next if m == method and path.startswith(p)), None)
            if drop is not None and status < 400:
                state.drop_next.discard(drop)
                self.close_connection = True
                self.connection.close()  # processed, never answered
                return None
        self._send(status, body)

    def _send(self, status: int, body: Any, retry_after: bool = False) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if retry_after:
            self.send_header("Retry-After", "30")
        self.end_headers()
        self.wfile.write(data)


def _route(state: StandIn, method: str, path: str, query: dict[str, list[str]],
           payload: Any) -> tuple[int, Any]:
    if not path.startswith(PREFIX) or not path.endswith("/"):
        return _error(404, "Not Found", "no such endpoint")
    parts = path[len(PREFIX):-1].split("/")
    match method, parts:
        case "GET", ["users", "me"]:
            return 200, {"id": "researcher0", "email": "researcher@example.org", "user_type": "researcher"}
        case "GET", ["studies", sid]:
            study = state.studies.get(sid)
            return (200, study) if study else _error(404, "Not Found", "No study with this id.")
        case "GET", ["studies", sid, "submissions"]:
            return _list_submissions(state, sid, query)
        case "GET", ["submissions", sub_id]:
            sub = state.submissions.get(sub_id)
            return (200, sub) if sub else _error(404, "Not Found", "No submission with this id.")
        case "POST", ["submissions", "bonus-payments"]:
            return _set_up_bonuses(state, payload)
        case "POST", ["submissions", sub_id, "transition"]:
            return _transition(state, sub_id, payload)
        case "POST", ["bulk-bonus-payments", bulk_id, "pay"]:
            bulk = state.bulks.get(bulk_id)
            if bulk is None:
                return _error(404, "Not Found", "No bulk bonus payment with this id.")
            for sub_id, amount in bulk["rows"]:  # not idempotent: every call pays
                state.submissions[sub_id]["bonus_payments"].append(int(amount * 100))
            bulk["paid_times"] += 1
            return 202, f"Bulk bonus payment with ID {bulk_id} is being processed asynchronously."
    return _error(404, "Not Found", "no such endpoint")


def _list_submissions(state: StandIn, sid: str, query: dict[str, list[str]]) -> tuple[int, Any]:
    if sid not in state.studies:
        return _error(404, "Not Found", "No study with this id.")
    try:
        limit = int(query.get("limit", [state.page_size])[0])
        offset = int(query.get("offset", ["0"])[0])
    except ValueError:
        return _error(400, "Bad Request", "limit and offset must be integers")
    rows = [s for s in state.submissions.values() if s["study_id"] == sid]
    page = rows[offset:offset + limit]
    base = f"{state.url}{PREFIX}studies/{sid}/submissions/"
    nxt = f"{base}?limit={limit}&offset={offset + limit}" if offset + limit < len(rows) else None
    prev = f"{base}?limit={limit}&offset={max(offset - limit, 0)}" if offset > 0 else None
    return 200, {
        "results": [{"id": s["id"], "participant_id": s["participant"], "status": s["status"],
                     "started_at": s["started_at"], "completed_at": s["completed_at"],
                     "study_code": s["entered_code"], "has_siblings": False,
                     "return_requested": None} for s in page],
        "_links": {"self": {"href": f"{base}?limit={limit}&offset={offset}", "title": "Current"},
                   "next": {"href": nxt, "title": "Next"},
                   "previous": {"href": prev, "title": "Previous"},
                   "last": {"href": f"{base}?limit={limit}&offset={max(len(rows) - limit, 0)}",
                            "title": "Last"}},
        "meta": {"count": len(rows)},
    }


def _transition(state: StandIn, sub_id: str, payload: Any) -> tuple[int, Any]:
    sub = state.submissions.get(sub_id)
    if sub is None:
        return _error(404, "Not Found", "No submission with this id.")
    action = payload.get("action") if isinstance(payload, dict) else None
    if action != "APPROVE":
        return _error(400, "Bad Request", {"action": ["this stand-in knows APPROVE only"]})
    if sub["status"] not in ("AWAITING REVIEW", "APPROVED"):
        return _error(400, "Bad Request", f"a submission {sub['status']} cannot be approved")
    sub["status"] = "APPROVED"  # a repeat is ignored, as documented
    return 200, {k: sub[k] for k in ("id", "started_at", "status", "study_id", "completed_at",
                                     "entered_code", "participant")}


def _set_up_bonuses(state: StandIn, payload: Any) -> tuple[int, Any]:
    if not isinstance(payload, dict) or payload.get("study_id") not in state.studies:
        return _error(400, "Bad Request", {"study_id": ["unknown study"]})
    rows, wrong = [], []
    for line in str(payload.get("csv_bonuses", "")).splitlines():
        sub_id, _, amount = line.partition(",")
        sub = state.submissions.get(sub_id)
        if sub is None or sub["study_id"] != payload["study_id"]:
            wrong.append(sub_id)
            continue
        rows.append((sub_id, Decimal(amount)))
    if wrong or not rows:
        return _error(400, "Bad Request", {"csv_bonuses": [f"ids not in this study: {', '.join(wrong)}"]})
    bulk_id = new_id()
    state.bulks[bulk_id] = {"rows": rows, "paid_times": 0}
    amount = float(sum(a for _, a in rows))
    return 201, {"id": bulk_id, "study": payload["study_id"], "amount": amount,
                 "fees": round(amount / 3, 2), "total_amount": round(amount * 4 / 3, 2), "vat": 0}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: StandIn


def serve(token: str, page_size: int = 2) -> tuple[StandIn, _Server]:
    """Start a stand-in on a free port of 127.0.0.1 in a daemon thread; (state, server). Its
    API base URL is `state.url + "/api/v1/"`; `server.shutdown()` stops it."""
    server = _Server(("127.0.0.1", 0), _Handler)
    state = StandIn(token=token, page_size=page_size)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    server.state = state
    threading.Thread(target=server.serve_forever, daemon=True, name="prolific-stand-in").start()
    return state, server

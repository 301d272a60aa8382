"""Bad input never gets a 5xx: schemathesis from the OpenAPI document, hypothesis properties of the
validators, and hand-made nasty requests. Every refusal is a 4xx JSON error naming the field."""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.hardening_input import error_body_problem, fuzz
from study.errors import ApiError
from study.validation import MAX_MS, get_int, get_number, get_uuid, parse_clicks, parse_events

H = "X-Participant-Token"
RESPONSES = "/api/v1/participant/responses"


def _error(res, status: int, field: str | None) -> str:
    assert res.status_code == status, (res.status_code, res.get_data(as_text=True)[:300])
    body = res.get_json(silent=True)
    assert error_body_problem(res.status_code, body) is None, res.get_data(as_text=True)[:300]
    assert body["error"]["field"] == field, body
    return body["error"]["message"]


def _trial(client: FlaskClient, token: str) -> dict[str, Any]:
    return client.get("/api/v1/participant/trial", headers={H: token}).get_json()["trial"]


def _answer(trial: dict[str, Any], **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"client_uuid": str(uuid.uuid4()), "trial_id": trial["id"], "rt_ms": 812.5}
    if trial["task"] == "clickme":
        body["clicks"] = [{"x": 0.2, "y": 0.3, "t": 100, "stroke": 0}, {"x": 0.4, "y": 0.5, "t": 180, "stroke": 1}]
    else:
        body["answer"] = "fake"
    body.update(over)
    return body


# ---------------------------------------------------------------- schemathesis


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_every_error_is_json(app: Flask, client: FlaskClient, start) -> None:
    """Generated valid and invalid requests for every documented operation, sent with a live
    participant's token, another study's participant's token and none."""
    from study.api.openapi import document

    mine, other = start("clickme")["token"], start("realfake")["token"]
    with app.app_context():
        doc = document()
    report = fuzz(doc, [{H: mine}, {H: other}, {}], max_examples=8, app=app)
    assert report.failures == [], report.failures[:10]
    assert report.tried >= 150, report.tried
    assert len(report.per_operation) == len(doc["paths"]) or len(report.per_operation) >= 6
    assert max(report.statuses) < 500 and any(400 <= s < 500 for s in report.statuses)


def test_error_contract_checker_catches_broken_answers() -> None:
    assert error_body_problem(500, {"error": {"message": "x", "field": None}}) == "server error 500"
    assert error_body_problem(400, None) is not None
    assert error_body_problem(404, {"error": {"message": "", "field": None}}) is not None
    assert error_body_problem(404, {"error": {"message": "gone"}}) is not None
    assert error_body_problem(404, {"error": {"message": "gone", "field": None}}) is None


# ---------------------------------------------------------------- hypothesis: the validators

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(value=JSON, lo=st.floats(0, 10), hi=st.floats(10, 1e7))
def test_get_number_accepts_only_finite_numbers_in_range(value: Any, lo: float, hi: float) -> None:
    try:
        out = get_number({"v": value}, "v", required=True, lo=lo, hi=hi)
    except ApiError as err:
        assert err.status == 400 and err.field == "v" and err.message
        return
    assert isinstance(out, float) and math.isfinite(out) and lo <= out <= hi
    assert not isinstance(value, bool) and value == out


@SETTINGS
@given(value=JSON)
def test_get_int_rejects_bools_floats_and_out_of_range(value: Any) -> None:
    try:
        out = get_int({"v": value}, "v", required=True, lo=1, hi=1000)
    except ApiError as err:
        assert err.status == 400 and err.field == "v"
        return
    assert type(out) is int and 1 <= out <= 1000 and type(value) is int


@SETTINGS
@given(value=JSON | st.uuids().map(str) | st.uuids().map(lambda u: str(u).upper()))
def test_get_uuid_gives_canonical_uuids_or_names_the_field(value: Any) -> None:
    try:
        out = get_uuid({"client_uuid": value}, "client_uuid")
    except ApiError as err:
        assert err.status == 400 and err.field == "client_uuid"
        return
    assert out == str(uuid.UUID(out)) and len(out) == 36


POINT = st.fixed_dictionaries(
    {"x": st.floats(-0.5, 1.5) | JSON, "y": st.floats(-0.5, 1.5), "t": st.floats(-10, 2 * MAX_MS)},
    optional={"stroke": st.integers(-2, 50) | JSON},
)


@SETTINGS
@given(value=st.lists(POINT, max_size=12) | JSON, budget=st.integers(1, 10))
def test_parse_clicks_keeps_only_valid_points(value: Any, budget: int) -> None:
    try:
        clicks = parse_clicks(value, budget=budget)
    except ApiError as err:
        assert err.status == 400 and err.field.startswith("clicks"), err.field
        return
    assert len(clicks) <= budget
    assert all(0 <= c.x <= 1 and 0 <= c.y <= 1 and 0 <= c.t_ms <= MAX_MS for c in clicks)
    assert all(a.stroke <= b.stroke for a, b in zip(clicks, clicks[1:], strict=False))


@SETTINGS
@given(events=JSON | st.lists(st.fixed_dictionaries({"kind": st.sampled_from(["blur", "focus", "x"]) | JSON},
                                                     optional={"t": JSON, "trial_id": JSON, "detail": JSON}),
                                max_size=5))
def test_parse_events_names_the_event_at_fault(events: Any) -> None:
    try:
        out = parse_events({"events": events})
    except ApiError as err:
        assert err.status == 400 and err.field.startswith("events"), err.field
        return
    assert 1 <= len(out) <= 200 and all(isinstance(e.detail, dict) for e in out)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=st.binary(max_size=200) | JSON.map(lambda v: json.dumps(v).encode()),
       content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded",
                                     "application/json; charset=utf-8", ""]))
def test_any_body_to_any_endpoint_is_a_4xx_json_error(app: Flask, raw: bytes, content_type: str) -> None:
    client = app.test_client()
    headers = {H: "not-a-token"}
    if content_type:
        headers["Content-Type"] = content_type
    for path in (RESPONSES, "/api/v1/participant/events", "/api/v1/studies/clickme/participants"):
        res = client.post(path, data=raw, headers=headers)
        assert 400 <= res.status_code < 500
        assert error_body_problem(res.status_code, res.get_json(silent=True)) is None


# ---------------------------------------------------------------- hand-made nasty requests


def test_oversized_body_is_413_json(client: FlaskClient, start) -> None:
    token = start()["token"]
    big = b'{"pad": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    res = client.post(RESPONSES, data=big, headers={H: token, "Content-Type": "application/json"})
    _error(res, 413, "body")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None])
def test_wrong_content_type_is_415(client: FlaskClient, start, content_type: str | None) -> None:
    token = start()["token"]
    body = json.dumps(_answer(_trial(client, token)))
    headers = {H: token} | ({"Content-Type": content_type} if content_type else {})
    _error(client.post(RESPONSES, data=body, headers=headers), 415, "Content-Type")


@pytest.mark.parametrize("raw", [b"[" * 100_000, b'{"a":' * 50_000, b"{", b"[]", b"null", b'"text"',
                                 b'{"rt_ms": NaN}', b'{"rt_ms": Infinity}', b"\xff\xfe"])
def test_malformed_json_is_400_body(client: FlaskClient, start, raw: bytes) -> None:
    token = start()["token"]
    res = client.post(RESPONSES, data=raw, headers={H: token, "Content-Type": "application/json"})
    _error(res, 400, "body")


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"clicks": [{"x": -0.01, "y": 0.5, "t": 1}, {"x": 0.5, "y": 0.5, "t": 2}]}, "clicks[0].x"),
        ({"clicks": [{"x": 0.5, "y": 0.5, "t": 1}, {"x": 0.5, "y": 1.0001, "t": 2}]}, "clicks[1].y"),
        ({"clicks": [{"x": 0.5, "y": 0.5, "t": -5}, {"x": 0.5, "y": 0.5, "t": 2}]}, "clicks[0].t"),
        ({"clicks": [{"x": 0.5, "y": 0.5, "t": 1e12}, {"x": 0.5, "y": 0.5, "t": 2}]}, "clicks[0].t"),
        ({"clicks": [{"x": "0.5", "y": 0.5, "t": 1}, {"x": 0.5, "y": 0.5, "t": 2}]}, "clicks[0].x"),
        ({"clicks": [{"x": 0.5, "y": 0.5, "t": 1, "stroke": 3}, {"x": 0.5, "y": 0.5, "t": 2, "stroke": 1}]}, "clicks[1].stroke"),
        ({"clicks": [{"x": 0.5, "y": 0.5, "t": 1}] * 31}, "clicks"),
        ({"clicks": [{"x": 0.5, "y": 0.5, "t": 1}]}, "clicks"),  # under min_clicks
        ({"clicks": {"x": 0.5}}, "clicks"),
        ({"rt_ms": -1}, "rt_ms"),
        ({"rt_ms": 3_600_001}, "rt_ms"),
        ({"rt_ms": 1e308}, "rt_ms"),
        ({"rt_ms": True}, "rt_ms"),
        ({"rt_ms": None}, "rt_ms"),
        ({"exposure_ms": -20}, "exposure_ms"),
        ({"client_uuid": "not-a-uuid"}, "client_uuid"),
        ({"client_uuid": None}, "client_uuid"),
        ({"trial_id": "1"}, "trial_id"),
        ({"trial_id": 0}, "trial_id"),
        ({"answer": "real"}, "answer"),  # answers belong to real-or-fake trials
    ],
)
def test_bad_clickme_fields_are_400_naming_the_field(client: FlaskClient, start, over: dict, field: str) -> None:
    token = start("clickme")["token"]
    trial = _trial(client, token)
    _error(client.post(RESPONSES, json=_answer(trial, **over), headers={H: token}), 400, field)
    assert _trial(client, token)["id"] == trial["id"]  # nothing was stored; still the same trial


@pytest.mark.parametrize(("over", "field"), [({"answer": "maybe"}, "answer"), ({"answer": None}, "answer"),
                                             ({"clicks": [{"x": 0.1, "y": 0.1, "t": 1}]}, "clicks")])
def test_bad_realfake_fields_are_400(client: FlaskClient, start, over: dict, field: str) -> None:
    token = start("realfake")["token"]
    trial = _trial(client, token)
    _error(client.post(RESPONSES, json=_answer(trial, **over), headers={H: token}), 400, field)


def test_unknown_and_foreign_trials_are_404(client: FlaskClient, start) -> None:
    me, other = start()["token"], start()["token"]
    theirs = _trial(client, other)
    mine = _trial(client, me)
    for trial_id in (theirs["id"], 10**9):
        _error(client.post(RESPONSES, json=_answer(mine, trial_id=trial_id), headers={H: me}), 404, "trial_id")
        res = client.get(f"/api/v1/participant/trials/{trial_id}/image", headers={H: me})
        _error(res, 404, "trial_id")
    ev = {"events": [{"kind": "blur", "t": 5, "trial_id": theirs["id"]}]}
    _error(client.post("/api/v1/participant/events", json=ev, headers={H: me}), 404, "events[0].trial_id")
    # The other participant's trial is untouched and still theirs to answer.
    res = client.post(RESPONSES, json=_answer(theirs), headers={H: other})
    assert res.status_code == 201


def test_a_uuid_cannot_be_reused_by_another_participant(client: FlaskClient, start) -> None:
    me, other = start()["token"], start()["token"]
    body = _answer(_trial(client, me))
    assert client.post(RESPONSES, json=body, headers={H: me}).status_code == 201
    stolen = _answer(_trial(client, other), client_uuid=body["client_uuid"])
    _error(client.post(RESPONSES, json=stolen, headers={H: other}), 409, "client_uuid")


def test_out_of_order_and_skipped_trials_are_409(client: FlaskClient, start) -> None:
    token = start()["token"]
    first = _trial(client, token)
    assert client.post(RESPONSES, json=_answer(first), headers={H: token}).status_code == 201
    # The answered trial again with a new UUID, and a trial further ahead.
    _error(client.post(RESPONSES, json=_answer(first), headers={H: token}), 409, "trial_id")
    _error(client.post(RESPONSES, json=_answer(first, trial_id=first["id"] + 2), headers={H: token}), 409, "trial_id")
    _error(client.post("/api/v1/participant/complete", json={}, headers={H: token}), 409, None)


def test_replays_after_the_study_closed_store_nothing_new(app: Flask, client: FlaskClient, start) -> None:
    from sqlalchemy import func, select, update

    from study import db
    from study.tables import Response, Study

    token = start()["token"]
    body = _answer(_trial(client, token))
    first = client.post(RESPONSES, json=body, headers={H: token})
    assert first.status_code == 201
    with app.app_context():
        db.session().execute(update(Study).where(Study.slug == "clickme").values(status="closed"))
        db.session().commit()
    again = client.post(RESPONSES, json=body, headers={H: token})
    assert again.status_code == 200 and again.get_json()["response_id"] == first.get_json()["response_id"]
    res = client.post("/api/v1/studies/clickme/participants",
                      json={"platform": "prolific", "PROLIFIC_PID": "late", "consent": True})
    _error(res, 410, None)
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Response)) == 1


@pytest.mark.parametrize("token", ["", "x" * 5000, "' OR 1=1 --", "preview", "\u00e9\u00e9"])
def test_bad_tokens_are_401(client: FlaskClient, token: str) -> None:
    res = client.get("/api/v1/participant/trial", headers={H: token} if token.isascii() else {H: "bad"})
    assert res.status_code == 401
    assert error_body_problem(401, res.get_json()) is None and res.get_json()["error"]["field"] == H

"""The served OpenAPI document covers every API route and method, real replies match it, and
the server accepts and refuses request bodies at the bounds it documents."""

from __future__ import annotations

import re
import uuid
from typing import Any

import jsonschema_rs
import pytest
from flask import Flask
from flask.testing import FlaskClient


def _openapi_path(rule: str) -> str:
    path = rule[len("/api/v1"):]
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", path)


def test_every_api_route_is_documented(app: Flask, client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    routes = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            routes[_openapi_path(rule.rule)] = {m.lower() for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes, "no API routes found"
    for path, methods in routes.items():
        assert path in doc["paths"], f"{path} is not documented"
        assert set(doc["paths"][path]) == methods, path
    assert set(doc["paths"]) == set(routes)  # nothing documented that does not exist


def test_refs_resolve(client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    text = str(doc)
    for name in re.findall(r"#/components/schemas/(\w+)", text):
        assert name in doc["components"]["schemas"], name


# ---------------------------------------------------------------- replies match the document

H = "X-Participant-Token"


def _reply_schema(doc: dict[str, Any], path: str, method: str, status: int) -> dict[str, Any]:
    documented = doc["paths"][path][method]["responses"]
    assert str(status) in documented, f"{method.upper()} {path}: status {status} is not documented"
    schema = documented[str(status)]["content"]["application/json"]["schema"]
    return {**schema, "components": doc["components"]}  # so that its $refs resolve


def _matches(doc: dict[str, Any], path: str, method: str, res: Any) -> dict[str, Any]:
    body = res.get_json()
    validator = jsonschema_rs.validator_for(_reply_schema(doc, path, method, res.status_code))
    problems = [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(body)]
    assert not problems, (method, path, res.status_code, body, problems)
    return body


@pytest.mark.parametrize("task", ["realfake", "clickme"])
def test_real_replies_match_the_document(client: FlaskClient, make_study, task: str) -> None:
    """A participant's whole visit (start, trials with a resend, events, done, complete) and
    its refusals, each reply checked against the served document's schema for its status."""
    doc = client.get("/api/v1/openapi.json").get_json()
    slug = make_study(task=task, n_main=2, n_practice=1, n_catch=1)
    start = f"/studies/{slug}/participants"
    started = _matches(doc, "/studies/{slug}/participants", "post",
                       client.post("/api/v1" + start, json={"consent": True, "start_key": "k1"}))
    retried = client.post("/api/v1" + start, json={"consent": True, "start_key": "k1"})
    assert retried.status_code == 201  # a direct start has no external id to resume by
    headers = {H: started["token"]}
    _matches(doc, "/participant/responses", "post",
             client.post("/api/v1/participant/responses", json={}, headers={}))  # 401
    for n in range(started["n_trials"]):
        reply = _matches(doc, "/participant/trial", "get",
                         client.get("/api/v1/participant/trial", headers=headers))
        trial = reply["trial"]
        body = {"client_uuid": str(uuid.uuid4()), "trial_id": trial["id"], "rt_ms": 300}
        if task == "clickme":
            body["clicks"] = [{"x": 0.1, "y": 0.2, "t": 5}, {"x": 0.3, "y": 0.4, "t": 9, "stroke": 1}]
        else:
            body["answer"] = "fake"
        bad = _matches(doc, "/participant/responses", "post", client.post(
            "/api/v1/participant/responses", json={**body, "rt_ms": -1}, headers=headers))
        assert bad["error"]["field"] == "rt_ms"
        stored = _matches(doc, "/participant/responses", "post",
                          client.post("/api/v1/participant/responses", json=body, headers=headers))
        assert stored["next_index"] == n + 1
        again = client.post("/api/v1/participant/responses", json=body, headers=headers)
        assert again.status_code == 200
        _matches(doc, "/participant/responses", "post", again)
        events = {"events": [{"kind": "blur", "t": 12.5, "trial_id": trial["id"], "detail": {"w": 3}}]}
        _matches(doc, "/participant/events", "post",
                 client.post("/api/v1/participant/events", json=events, headers=headers))
    done = _matches(doc, "/participant/trial", "get", client.get("/api/v1/participant/trial", headers=headers))
    assert done["done"] is True
    _matches(doc, "/participant/complete", "post",
             client.post("/api/v1/participant/complete", headers=headers))


def test_the_document_refuses_what_replies_must_not_carry(client: FlaskClient) -> None:
    """The check above has teeth: an undocumented key or a wrong type fails it."""
    doc = client.get("/api/v1/openapi.json").get_json()
    schema = _reply_schema(doc, "/participant/complete", "post", 200)
    good = {"completion_code": "C0DE", "redirect_url": None}
    assert jsonschema_rs.is_valid(schema, good)
    assert not jsonschema_rs.is_valid(schema, {**good, "secret": 1})
    assert not jsonschema_rs.is_valid(schema, {**good, "redirect_url": 5})
    assert not jsonschema_rs.is_valid(schema, {"completion_code": "C0DE"})


# ---------------------------------------------------------------- the server keeps the documented bounds


def _properties(doc: dict[str, Any], name: str) -> dict[str, dict[str, Any]]:
    """A body schema's properties, each with its non-null alternative (`X | None`) unwrapped."""
    out = {}
    for prop, schema in doc["components"]["schemas"][name]["properties"].items():
        options = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
        out[prop] = options[0]
    return out


def _bounded(props: dict[str, dict[str, Any]]) -> list[tuple[str, str, float]]:
    """(property, kind of bound, value) for every numeric bound in `props`."""
    return [(prop, key, schema[key]) for prop, schema in props.items()
            for key in ("minimum", "maximum") if key in schema]


def _outside(schema: dict[str, Any], key: str, value: float) -> float:
    step = 1 if schema["type"] == "integer" else max(abs(value) * 1e-6, 1e-6)
    return value - step if key == "minimum" else value + step


def _refused(res: Any, field: str) -> bool:
    return res.status_code == 400 and res.get_json()["error"]["field"] == field


@pytest.mark.parametrize("task", ["realfake", "clickme"])
def test_responses_are_accepted_and_refused_at_the_documented_bounds(
        client: FlaskClient, make_study, task: str) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    props = _properties(doc, "ResponseRequest")
    slug = make_study(task=task, n_main=40, n_practice=0, n_catch=0)
    headers = {H: client.post(f"/api/v1/studies/{slug}/participants", json={"consent": True}).get_json()["token"]}

    def post(**over: Any) -> Any:
        trial = client.get("/api/v1/participant/trial", headers=headers).get_json()["trial"]
        body = {"client_uuid": str(uuid.uuid4()), "trial_id": trial["id"], "rt_ms": 300}
        if task == "clickme":
            body["clicks"] = [{"x": 0.5, "y": 0.5, "t": 5}, {"x": 0.5, "y": 0.5, "t": 9}]
        else:
            body["answer"] = "real"
        return client.post("/api/v1/participant/responses", json={**body, **over}, headers=headers)

    required = doc["components"]["schemas"]["ResponseRequest"]["required"]
    assert set(required) == {"client_uuid", "trial_id", "rt_ms"}
    for field in required:
        assert _refused(post(**{field: None}), field), field
    checked = 0
    for prop, key, value in _bounded(props):
        if prop == "trial_id":
            continue  # the current trial's id is given; one past the bound is still refused below
        assert not _refused(post(**{prop: value}), prop), (prop, key, value)
        assert _refused(post(**{prop: _outside(props[prop], key, value)}), prop), (prop, key, value)
        checked += 1
    assert checked >= 5  # rt_ms, exposure_ms, client_sent_at, both ends
    assert _refused(post(trial_id=props["trial_id"]["maximum"] + 1), "trial_id")
    assert _refused(post(trial_id=props["trial_id"]["minimum"] - 1), "trial_id")
    assert _refused(post(client_uuid="x" * (props["client_uuid"]["maxLength"] + 1)), "client_uuid")
    if task == "realfake":
        for answer in props["answer"]["enum"]:
            assert post(answer=answer).status_code == 201
        assert _refused(post(answer="maybe"), "answer")
    else:
        click = _properties(doc, "Click")
        for prop, key, value in _bounded(click):
            if prop == "stroke":
                continue  # its upper bound is the study's click budget
            point = {"x": 0.5, "y": 0.5, "t": 5, prop: value}
            assert not _refused(post(clicks=[point, point]), f"clicks[0].{prop}"), (prop, key, value)
            point[prop] = _outside(click[prop], key, value)
            assert _refused(post(clicks=[point, point]), f"clicks[0].{prop}"), (prop, key, value)
        for prop in doc["components"]["schemas"]["Click"]["required"]:
            point = {"x": 0.5, "y": 0.5, "t": 5}
            del point[prop]
            assert _refused(post(clicks=[point, point]), f"clicks[0].{prop}"), prop


def test_starts_and_events_keep_the_documented_bounds(client: FlaskClient, make_study) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    start = _properties(doc, "StartRequest")
    slug = make_study(task="realfake", n_main=2)
    url = f"/api/v1/studies/{slug}/participants"
    assert _refused(client.post(url, json={}), "consent")
    longest = start["PROLIFIC_PID"]["maxLength"]
    assert client.post(url, json={"consent": True, "platform": "prolific",
                                  "PROLIFIC_PID": "p" * longest}).status_code == 201
    assert _refused(client.post(url, json={"consent": True, "platform": "prolific",
                                           "PROLIFIC_PID": "p" * (longest + 1)}), "PROLIFIC_PID")
    key = start["start_key"]["maxLength"]
    assert client.post(url, json={"consent": True, "start_key": "k" * key}).status_code == 201
    assert _refused(client.post(url, json={"consent": True, "start_key": "k" * (key + 1)}), "start_key")
    for platform in start["platform"]["enum"]:
        ids = {"PROLIFIC_PID": "a" + platform, "workerId": "b" + platform, "assignmentId": "c"}
        assert client.post(url, json={"consent": True, "platform": platform, **ids}).status_code == 201
    assert _refused(client.post(url, json={"consent": True, "platform": "myspace"}), "platform")

    headers = {H: client.post(url, json={"consent": True}).get_json()["token"]}
    events = doc["components"]["schemas"]["EventsRequest"]["properties"]["events"]
    event = _properties(doc, "Event")

    def post(items: list[dict[str, Any]]) -> Any:
        return client.post("/api/v1/participant/events", json={"events": items}, headers=headers)

    assert post([{"kind": "blur"}] * events["maxItems"]).status_code == 201
    assert _refused(post([{"kind": "blur"}] * (events["maxItems"] + 1)), "events")
    assert _refused(post([]), "events")
    for kind in event["kind"]["enum"]:
        assert post([{"kind": kind}]).status_code == 201
    assert _refused(post([{"kind": "scroll"}]), "events[0].kind")
    for prop, key, value in _bounded(event):
        if prop == "trial_id" and key == "maximum":
            continue  # a valid id of no trial of this participant is a 404
        ok = post([{"kind": "blur", prop: value}])
        assert not _refused(ok, f"events[0].{prop}"), (prop, key, value)
        assert _refused(post([{"kind": "blur", prop: _outside(event[prop], key, value)}]),
                        f"events[0].{prop}"), (prop, key, value)

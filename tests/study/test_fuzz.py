"""Fuzz the participant API from its own OpenAPI document (schemathesis + hypothesis): whatever
the body, path or header, the answer is never a server error, and every error is the JSON
`{"error": {"message", "field"}}` with a 4xx status."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from study_helpers import build_study

from study import create_app
from study.api.openapi import document
from study.migrate import upgrade

H = "X-Participant-Token"
schema = schemathesis.openapi.from_dict(document())
# One test per operation, each with its own test id (schema.parametrize() gives every operation
# the same id, and pytest-xdist then runs only one of them).
OPERATIONS = [result.ok() for result in schema.get_all_operations()]


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flask, str, str]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{tmp / 'fuzz.db'}"
    upgrade(url)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "fuzz", "STIMULI_ROOT": str(tmp / "stimuli"),
                      "FEEDBACK_CLASSIFIER": None})
    slug = build_study(app, task="clickme", n_main=200, n_practice=0, n_catch=0)
    res = app.test_client().post(f"/api/v1/studies/{slug}/participants", json={"consent": True})
    yield app, res.get_json()["token"], slug
    app.extensions["sqlalchemy_engine"].dispose()


def test_every_operation_is_fuzzed():
    assert len(OPERATIONS) == len([op for path in document()["paths"].values() for op in path]) >= 9


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.label)
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_server_errors(operation, data: st.DataObject, fuzz_app: tuple[Flask, str, str]) -> None:
    app, token, _ = fuzz_app
    case: schemathesis.Case = data.draw(operation.as_strategy())
    for headers in ({H: token}, {}):
        res = case.call(app=app, headers=headers)
        assert res.status_code < 500, (res.status_code, res.text[:300])
        if res.status_code >= 400:
            err = res.json()["error"]
            assert isinstance(err["message"], str) and err["message"]
            assert err["field"] is None or isinstance(err["field"], str)

"""The OpenAPI 3.1 document of the participant API, generated from the pydantic models of its
request bodies (study/validation.py) and replies (study/api/py).

OPERATIONS lists each endpoint's method, path, body model, reply models and error statuses;
every schema comes from the models' JSON Schema. tests/study/test_openapi.py checks that every
route under /api/v1 is documented with its methods, that real replies match the document, and
that the server accepts and refuses bodies at the bounds the document gives; the schemathesis
run fuzzes the endpoints from this document.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Any

from flask import Response, jsonify
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from study.api.schemas import (
    REPLIES,
    Classified,
    Completed,
    CurrentTrial,
    Done,
    Error,
    EventsStored,
    ResponseResult,
    Started,
)
from study.validation import (
    REQUESTS,
    ClassifyRequest,
    EventsRequest,
    ResponseRequest,
    StartRequest,
)

ERRORS = {
    400: "invalid body; `field` names the culprit",
    401: "missing or unknown participant token",
    403: "a preview without a researcher login",
    404: "unknown study or trial",
    409: "conflict (already taken part, not the current trial, unanswered trials)",
    410: "study closed, paused or full",
    413: "body too large",
    415: "Content-Type is not application/json",
}
BODY_ERRORS = (400, 413, 415)
PNG = {"image/png": {"schema": {"type": "string", "format": "binary"}}}
TOKEN = "participantToken"
Reply = type[BaseModel] | tuple[type[BaseModel], ...] | dict[str, Any]


@dataclass(frozen=True)
class Operation:
    """One endpoint. `replies`: status -> (description, reply model, models (one of them), or
    a ready content map); `params`: path parameter -> JSON Schema."""

    method: str
    path: str
    summary: str
    replies: dict[int, tuple[str, Reply]]
    errors: tuple[int, ...] = ()
    body: type[BaseModel] | None = None
    auth: bool = True
    params: tuple[tuple[str, dict[str, Any]], ...] = ()


_ID = {"type": "integer", "minimum": 1}

OPERATIONS = (
    Operation("post", "/studies/{slug}/participants", "Start a participant (after consent)",
              {201: ("started", Started),
               200: ("the same browser's retried start", Started)},
              errors=(*BODY_ERRORS, 403, 404, 409, 410), body=StartRequest, auth=False,
              params=(("slug", {"type": "string"}),)),
    Operation("get", "/participant/trial", "The current trial, or done",
              {200: ("trial or done", (CurrentTrial, Done))}, errors=(401,)),
    Operation("post", "/participant/responses",
              "Store the response to the current trial (idempotent on client_uuid)",
              {201: ("stored", ResponseResult),
               200: ("this client_uuid was stored before", ResponseResult)},
              errors=(*BODY_ERRORS, 401, 404, 409), body=ResponseRequest),
    Operation("post", "/participant/events", "Browser events (blur, focus, resize, fullscreen)",
              {201: ("stored", EventsStored)}, errors=(*BODY_ERRORS, 401, 404),
              body=EventsRequest),
    Operation("post", "/participant/complete",
              "Finish: the completion code and the platform's return URL",
              {200: ("completed", Completed)}, errors=(401, 409)),
    Operation("post", "/participant/classify",
              "ClickMe feedback: the classifier's answer on the revealed pixels",
              {200: ("the classifier's answer", Classified)},
              errors=(*BODY_ERRORS, 401, 404), body=ClassifyRequest),
    Operation("get", "/participant/trials/{trial_id}/image",
              "The PNG of one of the participant's trials (up to the current one)",
              {200: ("the image", PNG)}, errors=(401, 404), params=(("trial_id", _ID),)),
    Operation("get", "/stimuli/{stimulus_id}/image",
              "Any stimulus's PNG by id, for a logged-in researcher (session cookie)",
              {200: ("the image", PNG)}, errors=(401, 404), auth=False,
              params=(("stimulus_id", _ID),)),
    Operation("get", "/openapi.json", "This document",
              {200: ("OpenAPI 3.1", {"application/json": {"schema": {"type": "object"}}})},
              auth=False),
)


def _content(reply: Reply, refs: dict[type[BaseModel], dict[str, str]]) -> dict[str, Any]:
    if isinstance(reply, dict):
        return reply
    if isinstance(reply, tuple):
        schema: dict[str, Any] = {"oneOf": [refs[m] for m in reply]}
    else:
        schema = refs[reply]
    return {"application/json": {"schema": schema}}


def _operation(op: Operation, refs: dict[type[BaseModel], dict[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {"summary": op.summary}
    if op.params:
        out["parameters"] = [{"name": name, "in": "path", "required": True, "schema": schema}
                             for name, schema in op.params]
    if op.auth:
        out["security"] = [{TOKEN: []}]
    if op.body is not None:
        out["requestBody"] = {"required": True, "content": _content(op.body, refs)}
    responses = {str(status): {"description": text, "content": _content(reply, refs)}
                 for status, (text, reply) in op.replies.items()}
    for status in op.errors:
        responses[str(status)] = {"description": ERRORS[status],
                                  "content": _content(Error, refs)}
    out["responses"] = responses
    return out


def document() -> dict[str, Any]:
    """The whole document (a copy: the caller may change it)."""
    return copy.deepcopy(_document())


@functools.cache
def _document() -> dict[str, Any]:
    models = [(m, "validation") for m in REQUESTS] + [(m, "serialization") for m in REPLIES]
    keys, top = models_json_schema(models, ref_template="#/components/schemas/{model}")
    refs = {model: ref for (model, _), ref in keys.items()}
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "diffusion-psychophysics participant API",
            "version": "1",
            "description": "Every error is {\"error\": {\"message\", \"field\"}} with a 4xx status; "
                           "`field` is the request field at fault, dotted (`clicks[3].x`), or null.",
        },
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "components": {
            "schemas": top["$defs"],
            "securitySchemes": {TOKEN: {"type": "apiKey", "in": "header", "name": "X-Participant-Token"}},
        },
    }


def openapi_json() -> Response:
    return jsonify(document())

"""The OpenAPI 3 document of the participant API, kept beside the endpoints it describes.

tests/study/test_openapi.py checks that every route under /api/v1 is documented here with its
methods, and the schemathesis run fuzzes the endpoints from this document.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify

from study.validation import EVENT_KINDS, MAX_EVENTS, MAX_MS

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "invalid body; `field` names the culprit",
        401: "missing or unknown participant token",
        403: "a preview without a researcher login",
        404: "unknown study or trial",
        409: "conflict (already taken part, not the current trial, unanswered trials)",
        410: "study closed, paused or full",
        413: "body too large",
        415: "Content-Type is not application/json",
    }
    return {str(c): {"description": text[c], **_json(_ERROR)} for c in codes}


_BODY_ERRORS = (400, 413, 415)
_AUTH = [{"participantToken": []}]

_CLICK = {
    "type": "object",
    "required": ["x", "y", "t"],
    "properties": {
        "x": {"type": "number", "minimum": 0, "maximum": 1, "description": "left to right"},
        "y": {"type": "number", "minimum": 0, "maximum": 1, "description": "top to bottom"},
        "t": {"type": "number", "minimum": 0, "maximum": MAX_MS, "description": "ms since the image appeared"},
        "stroke": {"type": "integer", "minimum": 0, "description": "points of one drag share a stroke"},
    },
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "field"],
                "properties": {
                    "message": {"type": "string"},
                    "field": {"type": ["string", "null"]},
                },
            }
        },
    },
    "StartRequest": {
        "type": "object",
        "required": ["consent"],
        "properties": {
            "consent": {"type": "boolean", "const": True},
            "platform": {"type": "string", "enum": ["prolific", "mturk", "direct"]},
            "PROLIFIC_PID": {"type": "string", "maxLength": 128},
            "STUDY_ID": {"type": "string", "maxLength": 128},
            "SESSION_ID": {"type": "string", "maxLength": 128},
            "workerId": {"type": "string", "maxLength": 128},
            "assignmentId": {"type": "string", "maxLength": 128},
            "hitId": {"type": "string", "maxLength": 128},
            "preview": {"type": "boolean", "description": "a logged-in researcher's preview"},
            "start_key": {
                "type": "string",
                "maxLength": 64,
                "description": "the browser's key for this start; a retry with the same key "
                "(reply lost) gets the same participant back with 200",
            },
        },
    },
    "Started": {
        "type": "object",
        "required": ["token", "participant_id", "condition", "n_trials", "current_index"],
        "properties": {
            "token": {"type": "string", "description": "send as X-Participant-Token"},
            "participant_id": {"type": "string"},
            "condition": {"type": ["string", "null"]},
            "n_trials": {"type": "integer"},
            "current_index": {"type": "integer"},
        },
    },
    "Trial": {
        "type": "object",
        "required": ["id", "index", "n_trials", "kind", "task", "image_url", "exposure_ms", "settings"],
        "properties": {
            "id": {"type": "integer"},
            "index": {"type": "integer"},
            "n_trials": {"type": "integer"},
            "kind": {"type": "string", "enum": ["practice", "main", "catch"]},
            "task": {"type": "string", "enum": ["clickme", "realfake"]},
            "image_url": {"type": "string"},
            "exposure_ms": {"type": ["number", "null"], "description": "null: until the answer"},
            "settings": {"type": "object"},
            "class_text": {"type": ["string", "null"],
                           "description": "ClickMe only: what the image shows, in words (null: none)"},
            "answer_key": {"type": "string", "description": "real-or-fake practice trials only"},
        },
    },
    "TrialOrDone": {
        "type": "object",
        "properties": {
            "trial": {"$ref": "#/components/schemas/Trial"},
            "done": {"type": "boolean"},
            "n_trials": {"type": "integer"},
            "current_index": {"type": "integer"},
        },
    },
    "ResponseRequest": {
        "type": "object",
        "required": ["client_uuid", "trial_id", "rt_ms"],
        "properties": {
            "client_uuid": {"type": "string", "format": "uuid"},
            "trial_id": {"type": "integer", "minimum": 1},
            "answer": {"type": "string", "enum": ["real", "fake"]},
            "confidence": {"type": "integer"},
            "rt_ms": {"type": "number", "minimum": 0, "maximum": MAX_MS},
            "exposure_ms": {"type": "number", "minimum": 0, "maximum": MAX_MS},
            "clicks": {"type": "array", "items": _CLICK},
            "client_sent_at": {"type": "number", "description": "client epoch ms"},
        },
    },
    "ResponseResult": {
        "type": "object",
        "required": ["response_id", "trial_id", "correct", "feedback", "next_index"],
        "properties": {
            "response_id": {"type": ["integer", "null"]},
            "trial_id": {"type": "integer"},
            "correct": {"type": ["boolean", "null"]},
            "feedback": {"type": "object"},
            "next_index": {"type": "integer"},
        },
    },
    "EventsRequest": {
        "type": "object",
        "required": ["events"],
        "properties": {
            "events": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_EVENTS,
                "items": {
                    "type": "object",
                    "required": ["kind"],
                    "properties": {
                        "kind": {"type": "string", "enum": list(EVENT_KINDS)},
                        "t": {"type": "number", "minimum": 0},
                        "trial_id": {"type": "integer", "minimum": 1},
                        "detail": {"type": "object"},
                    },
                },
            }
        },
    },
    "Completed": {
        "type": "object",
        "required": ["completion_code", "redirect_url"],
        "properties": {
            "completion_code": {"type": "string"},
            "redirect_url": {"type": ["string", "null"]},
        },
    },
    "ClassifyRequest": {
        "type": "object",
        "required": ["trial_id"],
        "properties": {
            "trial_id": {"type": "integer", "minimum": 1},
            "clicks": {"type": "array", "items": _CLICK},
        },
    },
    "Classified": {
        "type": "object",
        "required": ["class_text", "probability", "correct"],
        "properties": {
            "class_text": {"type": ["string", "null"],
                           "description": "the class the classifier chose, in words (null: none)"},
            "probability": {"type": "number"},
            "correct": {"type": "boolean"},
        },
    },
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


PATHS: dict[str, Any] = {
    "/studies/{slug}/participants": {
        "post": {
            "summary": "Start a participant (after consent)",
            "parameters": [{"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": {"required": True, **_json(_ref("StartRequest"))},
            "responses": {
                "201": {"description": "started", **_json(_ref("Started"))},
                "200": {"description": "the same browser's retried start", **_json(_ref("Started"))},
                **_errors(*_BODY_ERRORS, 403, 404, 409, 410),
            },
        }
    },
    "/participant/trial": {
        "get": {
            "summary": "The current trial, or done",
            "security": _AUTH,
            "responses": {"200": {"description": "trial or done", **_json(_ref("TrialOrDone"))}, **_errors(401)},
        }
    },
    "/participant/responses": {
        "post": {
            "summary": "Store the response to the current trial (idempotent on client_uuid)",
            "security": _AUTH,
            "requestBody": {"required": True, **_json(_ref("ResponseRequest"))},
            "responses": {
                "201": {"description": "stored", **_json(_ref("ResponseResult"))},
                "200": {"description": "this client_uuid was stored before", **_json(_ref("ResponseResult"))},
                **_errors(*_BODY_ERRORS, 401, 404, 409),
            },
        }
    },
    "/participant/events": {
        "post": {
            "summary": "Browser events (blur, focus, resize, fullscreen)",
            "security": _AUTH,
            "requestBody": {"required": True, **_json(_ref("EventsRequest"))},
            "responses": {
                "201": {"description": "stored", **_json({"type": "object", "properties": {"stored": {"type": "integer"}}})},
                **_errors(*_BODY_ERRORS, 401, 404),
            },
        }
    },
    "/participant/complete": {
        "post": {
            "summary": "Finish: the completion code and the platform's return URL",
            "security": _AUTH,
            "responses": {"200": {"description": "completed", **_json(_ref("Completed"))}, **_errors(401, 409)},
        }
    },
    "/participant/classify": {
        "post": {
            "summary": "ClickMe feedback: the classifier's answer on the revealed pixels",
            "security": _AUTH,
            "requestBody": {"required": True, **_json(_ref("ClassifyRequest"))},
            "responses": {
                "200": {"description": "the classifier's answer", **_json(_ref("Classified"))},
                **_errors(*_BODY_ERRORS, 401, 404),
            },
        }
    },
    "/participant/trials/{trial_id}/image": {
        "get": {
            "summary": "The PNG of one of the participant's trials (up to the current one)",
            "security": _AUTH,
            "parameters": [{"name": "trial_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}],
            "responses": {
                "200": {"description": "the image", "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
                **_errors(401, 404),
            },
        }
    },
    "/stimuli/{stimulus_id}/image": {
        "get": {
            "summary": "Any stimulus's PNG by id, for a logged-in researcher (session cookie)",
            "parameters": [{"name": "stimulus_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}],
            "responses": {
                "200": {"description": "the image", "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
                **_errors(401, 404),
            },
        }
    },
    "/openapi.json": {
        "get": {
            "summary": "This document",
            "responses": {"200": {"description": "OpenAPI 3.1", **_json({"type": "object"})}},
        }
    },
}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "diffusion-psychophysics participant API",
            "version": "1",
            "description": "Every error is {\"error\": {\"message\", \"field\"}} with a 4xx status.",
        },
        "servers": [{"url": "/api/v1"}],
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "participantToken": {"type": "apiKey", "in": "header", "name": "X-Participant-Token"}
            },
        },
    }


def openapi_json():  # noqa: ANN201
    return jsonify(document())

"""The JSON API (/api/v1): participant endpoints, errors as JSON, the OpenAPI document.

`blueprint()` builds the API's blueprint from ROUTES, the table of its endpoints.
"""

from __future__ import annotations

from flask import Blueprint, request

from study.api import endpoints, openapi

ROUTES = (
    ("POST", "/studies/<slug>/participants", endpoints.start),
    ("GET", "/participant/trial", endpoints.get_trial),
    ("POST", "/participant/responses", endpoints.post_response),
    ("POST", "/participant/events", endpoints.post_events),
    ("POST", "/participant/complete", endpoints.complete),
    ("POST", "/participant/classify", endpoints.classify_clicks),
    ("GET", "/participant/trials/<int:trial_id>/image", endpoints.trial_image),
    ("GET", "/stimuli/<int:stimulus_id>/image", endpoints.stimulus_image),
    ("GET", "/openapi.json", openapi.openapi_json),
)


def _read_body() -> None:
    """Read every request body, also on endpoints that ignore it (complete, GETs with a body):
    an unread body left on a keep-alive connection made gunicorn drop the connection's next
    request. The body is cached for json_object(); one over MAX_CONTENT_LENGTH is a JSON 413."""
    if request.content_length or request.headers.get("Transfer-Encoding"):
        request.get_data(cache=True)


def blueprint() -> Blueprint:
    bp = Blueprint("api", __name__)
    bp.before_request(_read_body)
    for method, rule, view in ROUTES:
        bp.add_url_rule(rule, view_func=view, methods=[method])
    return bp

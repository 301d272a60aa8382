"""The JSON API (/api/v1): participant endpoints, errors as JSON, the OpenAPI document."""

from flask import Blueprint, request

bp = Blueprint("api", __name__)


@bp.before_request
def _read_body() -> None:
    """Read every request body, also on endpoints that ignore it (complete, GETs with a body):
    an unread body left on a keep-alive connection made gunicorn drop the connection's next
    request. The body is cached for json_object(); one over MAX_CONTENT_LENGTH is a JSON 413."""
    if request.content_length or request.headers.get("Transfer-Encoding"):
        request.get_data(cache=True)


from study.api import endpoints, openapi  # noqa: E402,F401  (routes register on import)

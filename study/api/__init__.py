"""The JSON API (/api/v1): participant endpoints, errors as JSON, the OpenAPI document."""

from flask import Blueprint

bp = Blueprint("api", __name__)

from study.api import endpoints, openapi  # noqa: E402,F401  (routes register on import)

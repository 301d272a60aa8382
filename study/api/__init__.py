"""The JSON API (/api/v1): participant endpoints, errors as JSON, the OpenAPI document."""

from flask import Blueprint

bp = Blueprint("api", __name__)

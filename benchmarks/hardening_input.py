"""Bad input against the participant API: schemathesis cases from the app's own OpenAPI document
(/api/v1/openapi.json), valid and invalid (positive and negative generation), sent with a real
participant's token, without one, and with another participant's, to the WSGI app or to a live
server. Every answer must be below 500, and every 4xx must be the JSON error
`{"error": {"message": str, "field": str | null}}`; schemathesis' own checks (documented status
codes, content types, response schemas) run as well.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

TOKEN = "X-Participant-Token"
CHECKS = (not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance)


@dataclass
class FuzzReport:
    tried: int = 0
    statuses: Counter = field(default_factory=Counter)
    per_operation: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        if message not in self.failures and len(self.failures) < 50:
            self.failures.append(message)


def error_body_problem(status: int, body: Any) -> str | None:
    """Why a response breaks the error contract (None when it keeps it)."""
    if status >= 500:
        return f"server error {status}"
    if status < 400:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return f"{status} without a JSON error object"
    err = body["error"]
    if not isinstance(err.get("message"), str) or not err["message"].strip():
        return f"{status} error without a message"
    if "field" not in err or not (err["field"] is None or isinstance(err["field"], str)):
        return f"{status} error without a field (str or null)"
    return None


def load_schema(document: dict[str, Any]) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_dict(document)


def fuzz(document: dict[str, Any], token_sets: list[dict[str, str]], max_examples: int, *,
         app: Any = None, base_url: str | None = None, seed: int = 0) -> FuzzReport:
    """Send up to `max_examples` generated cases per operation and mode, each with every header
    set in `token_sets`, to the WSGI `app` or the live server at `base_url`."""
    if (app is None) == (base_url is None):
        raise ValueError("give exactly one of app and base_url")
    schema = load_schema(document)
    report = FuzzReport()
    if base_url is not None:  # the document's paths are relative to its server URL (/api/v1)
        prefix = ((document.get("servers") or [{}])[0].get("url") or "").rstrip("/")
        target: dict[str, Any] = {"base_url": base_url.rstrip("/") + (prefix if prefix.startswith("/") else "")}
    else:
        target = {"app": app}
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            test = _operation_test(operation, mode, token_sets, target, max_examples, report)
            try:
                test()
            except Unsatisfiable:
                continue
            except Exception as exc:  # schemathesis may re-raise a check failure after the run
                first = str(exc).strip().splitlines()
                report.fail(f"{operation.label} [{mode.value}]: {first[0] if first else type(exc).__name__}")
    return report


def _operation_test(operation: Any, mode: GenerationMode, token_sets: list[dict[str, str]],
                    target: dict[str, Any], max_examples: int, report: FuzzReport) -> Any:
    """A hypothesis test that sends `operation`'s generated cases and records what came back."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=max_examples, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def test(case: schemathesis.Case) -> None:
        for headers in token_sets:
            try:
                res = case.call(headers=headers, **target)
            except Exception as exc:  # a request the transport refuses to send
                report.fail(f"{operation.label}: could not send: {type(exc).__name__}: {exc}")
                continue
            report.tried += 1
            report.per_operation[operation.label] += 1
            report.statuses[res.status_code] += 1
            try:
                body = res.json()
            except Exception:
                body = None
            problem = error_body_problem(res.status_code, body)
            if problem:
                report.fail(f"{operation.label} [{mode.value}]: {problem}: {res.text[:200]}")
            try:
                case.validate_response(res, checks=CHECKS)
            except Exception as exc:  # schemathesis' check failures (one or a group)
                first = str(exc).strip().splitlines()
                report.fail(f"{operation.label} [{mode.value}]: {first[0] if first else type(exc).__name__}"
                            f" (status {res.status_code})")

    return test

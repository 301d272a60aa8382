"""Validation of the participant API's JSON bodies; every failure is an ApiError naming the field.

Bounds (reject absurd values rather than store them): times are finite, non-negative and under
an hour; clicks lie in [0, 1] image coordinates; lists are capped.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from typing import Any

from flask import request

from study.errors import ApiError

MAX_MS = 3_600_000.0  # one hour: longer reaction or click times are not plausible
MAX_EVENTS = 200
EVENT_KINDS = (
    "blur",
    "focus",
    "resize",
    "fullscreen_enter",
    "fullscreen_exit",
    "visibility_hidden",
    "visibility_visible",
    "offline",
    "online",
)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def json_object() -> dict[str, Any]:
    """The request body as a JSON object: 415 for another content type, 400 for bad JSON."""
    if request.mimetype != "application/json":
        raise ApiError(415, "Content-Type must be application/json", "Content-Type")
    raw = request.get_data(cache=True)
    try:
        body = json.loads(raw or b"", parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON ({exc})", "body") from None
    except RecursionError:  # e.g. "[[[[..." 100,000 deep: refuse it, never a 500
        raise ApiError(400, "the body is nested too deeply", "body") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object", "body")
    return body


def _missing(field: str) -> ApiError:
    return ApiError(400, f"{field} is required", field)


def get_str(
    d: dict[str, Any],
    name: str,
    *,
    required: bool = False,
    max_len: int = 128,
    choices: tuple[str, ...] | None = None,
    field: str | None = None,
) -> str | None:
    field = field or name
    value = d.get(name)
    if value is None:
        if required:
            raise _missing(field)
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"{field} must be a string", field)
    if choices is not None and value not in choices:
        raise ApiError(400, f"{field} must be one of {', '.join(choices)}", field)
    if not value.strip() or len(value) > max_len:
        raise ApiError(400, f"{field} must be 1 to {max_len} characters", field)
    return value


def get_number(
    d: dict[str, Any],
    name: str,
    *,
    required: bool = False,
    lo: float = 0.0,
    hi: float = MAX_MS,
    field: str | None = None,
) -> float | None:
    field = field or name
    value = d.get(name)
    if value is None:
        if required:
            raise _missing(field)
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError(400, f"{field} must be a number", field)
    if not math.isfinite(value) or not lo <= value <= hi:
        raise ApiError(400, f"{field} must lie within [{lo:g}, {hi:g}]", field)
    return float(value)


def get_int(
    d: dict[str, Any],
    name: str,
    *,
    required: bool = False,
    lo: int = 0,
    hi: int = 2**31 - 1,
    field: str | None = None,
) -> int | None:
    field = field or name
    value = d.get(name)
    if value is None:
        if required:
            raise _missing(field)
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"{field} must be an integer", field)
    if not lo <= value <= hi:
        raise ApiError(400, f"{field} must lie within [{lo}, {hi}]", field)
    return value


def get_uuid(d: dict[str, Any], name: str) -> str:
    value = get_str(d, name, required=True, max_len=36)
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ApiError(400, f"{name} must be a UUID", name) from None


@dataclass(frozen=True)
class ClickIn:
    x: float
    y: float
    t_ms: float
    stroke: int


def parse_clicks(value: Any, *, budget: int, field: str = "clicks") -> list[ClickIn]:
    """Validate ClickMe points: x, y in [0, 1]; t in ms since the image appeared; at most
    `budget` points; strokes are non-decreasing integers (points of one drag share one)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ApiError(400, f"{field} must be a list", field)
    if len(value) > budget:
        raise ApiError(400, f"{field} has {len(value)} points; the budget is {budget}", field)
    out: list[ClickIn] = []
    last_stroke = 0
    for i, point in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(point, dict):
            raise ApiError(400, f"{where} must be an object with x, y, t", where)
        x = get_number(point, "x", required=True, lo=0.0, hi=1.0, field=f"{where}.x")
        y = get_number(point, "y", required=True, lo=0.0, hi=1.0, field=f"{where}.y")
        t = get_number(point, "t", required=True, lo=0.0, hi=MAX_MS, field=f"{where}.t")
        stroke = get_int(point, "stroke", lo=0, hi=budget, field=f"{where}.stroke")
        stroke = last_stroke if stroke is None else stroke
        if stroke < last_stroke:
            raise ApiError(400, f"{where}.stroke must not decrease", f"{where}.stroke")
        last_stroke = stroke
        out.append(ClickIn(x, y, t, stroke))  # type: ignore[arg-type]
    return out


@dataclass(frozen=True)
class EventIn:
    kind: str
    t_ms: float | None
    trial_id: int | None
    detail: dict[str, Any]


def parse_events(body: dict[str, Any]) -> list[EventIn]:
    events = body.get("events")
    if not isinstance(events, list) or not events:
        raise ApiError(400, "events must be a non-empty list", "events")
    if len(events) > MAX_EVENTS:
        raise ApiError(400, f"at most {MAX_EVENTS} events per request", "events")
    out = []
    for i, ev in enumerate(events):
        where = f"events[{i}]"
        if not isinstance(ev, dict):
            raise ApiError(400, f"{where} must be an object", where)
        kind = get_str(ev, "kind", required=True, choices=EVENT_KINDS, field=f"{where}.kind")
        t = get_number(ev, "t", lo=0.0, hi=1e10, field=f"{where}.t")
        trial_id = get_int(ev, "trial_id", lo=1, field=f"{where}.trial_id")
        detail = ev.get("detail") or {}
        if not isinstance(detail, dict):
            raise ApiError(400, f"{where}.detail must be an object", f"{where}.detail")
        if len(json.dumps(detail)) > 2000:
            raise ApiError(400, f"{where}.detail is too large", f"{where}.detail")
        out.append(EventIn(kind, t, trial_id, detail))  # type: ignore[arg-type]
    return out

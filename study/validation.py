"""The participant API's request bodies as pydantic models, and the views' validation entry
points; every failure is an ApiError whose message is `dotted.field: message` and whose `field`
is that dotted path (`clicks[3].x`).

The models (`StartRequest`, `ResponseRequest`, `EventsRequest`, `ClassifyRequest`) are what the
OpenAPI document publishes (study/api/openapi.py). The views read a body field by field with
`get_str`, `get_number`, `get_int`, `get_uuid`, whose bounds are the models' (tests/study/
test_openapi.py checks that the server accepts and refuses what the document says), and lists
with `parse_clicks` and `parse_events`, which validate against the models themselves. A field
sent as null counts as absent. Unknown fields are ignored.

Bounds (reject absurd values rather than store them): times are finite, non-negative and under
an hour; clicks lie in [0, 1] image coordinates; lists are capped.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from flask import request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from fieldcheck import Bool, Float, Int, Str, first_error, text
from study.errors import ApiError

MAX_MS = 3_600_000.0  # one hour: longer reaction or click times are not plausible
MAX_ID = 2**31 - 1  # ids are 32-bit integers on every backend
MAX_EVENTS = 200
MAX_DETAIL_CHARS = 2000
MAX_CLIENT_TIME_MS = 1e14  # a client's epoch ms (the year 5138)
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
PLATFORMS = ("prolific", "mturk", "direct")
ANSWERS = ("real", "fake")
NAME_CHARS = 128  # platform ids
START_KEY_CHARS = 64


_PARSE_UUID = TypeAdapter(uuid.UUID).validator.validate_python  # pydantic-core's parser


def _canonical_uuid(value: str) -> str:
    try:
        return str(_PARSE_UUID(value))
    except ValidationError:
        raise ValueError(f"expected a UUID, got {value!r}") from None


def _small_detail(value: dict[str, Any] | None) -> dict[str, Any]:
    if value and len(json.dumps(value)) > MAX_DETAIL_CHARS:
        raise ValueError(f"is too large (at most {MAX_DETAIL_CHARS} characters of JSON)")
    return value or {}


Ms = Annotated[Float, Field(ge=0, le=MAX_MS)]
Id = Annotated[Int, Field(ge=1, le=MAX_ID)]
Name = text(NAME_CHARS)
ClientUuid = Annotated[Str, Field(max_length=36, json_schema_extra={"format": "uuid"}),
                       AfterValidator(_canonical_uuid)]
ClientTime = Annotated[Float, Field(ge=0, le=MAX_CLIENT_TIME_MS)]
Unit = Annotated[Float, Field(ge=0, le=1)]

# A body is a JSON object: unknown keys are ignored (the views never read them), NaN is refused.
_BODY = ConfigDict(extra="ignore", allow_inf_nan=False, frozen=True)


class Click(BaseModel):
    """One ClickMe point, in image coordinates."""

    model_config = _BODY
    x: Annotated[Unit, Field(description="left to right")]
    y: Annotated[Unit, Field(description="top to bottom")]
    t: Annotated[Ms, Field(description="ms since the image appeared")]
    stroke: Annotated[Int, Field(ge=0)] | None = Field(
        None, description="points of one drag share a stroke; non-decreasing, at most the click "
        "budget; none: the previous point's")


class Event(BaseModel):
    """A browser event (blur, focus, resize, fullscreen, visibility, network)."""

    model_config = _BODY
    kind: Literal[EVENT_KINDS]
    t: Annotated[Float, Field(ge=0, le=1e10)] | None = Field(None, description="ms since the page loaded")
    trial_id: Id | None = None
    detail: Annotated[dict[str, Any] | None, AfterValidator(_small_detail)] = Field(
        default_factory=dict)


Px = Annotated[Int, Field(ge=0, le=100_000)]


class Screen(BaseModel):
    """What the browser reports of its window and screen at the start, in CSS pixels; the
    server's device rule (study/participation/devices.py) decides with it."""

    model_config = _BODY
    viewport_width: Annotated[Px, Field(description="window.innerWidth")]
    viewport_height: Annotated[Px, Field(description="window.innerHeight")]
    screen_width: Px | None = Field(None, description="screen.width")
    screen_height: Px | None = Field(None, description="screen.height")
    touch_points: Annotated[Int, Field(ge=0, le=1_000)] | None = Field(
        None, description="navigator.maxTouchPoints")


class StartRequest(BaseModel):
    model_config = _BODY
    consent: Literal[True]
    platform: Literal[PLATFORMS] | None = None
    PROLIFIC_PID: Name | None = None
    STUDY_ID: Name | None = None
    SESSION_ID: Name | None = None
    workerId: Name | None = None
    assignmentId: Name | None = None
    hitId: Name | None = None
    preview: Bool | None = Field(None, description="a logged-in researcher's preview")
    start_key: text(START_KEY_CHARS) | None = Field(
        None, description="the browser's key for this start; a retry with the same key (reply "
        "lost) gets the same participant back with 200")
    screen: Screen | None = Field(
        None, description="the browser's window and screen; required where the study sets a "
        "minimum viewport or screen size")


class ResponseRequest(BaseModel):
    """An answer to the current trial: `answer` (and `confidence` where the study asks for it)
    on real-or-fake trials, `clicks` (at least the study's min_clicks) on ClickMe trials."""

    model_config = _BODY
    client_uuid: ClientUuid
    trial_id: Id
    answer: Literal[ANSWERS] | None = None
    confidence: Int | None = Field(None, description="within the study's confidence range")
    rt_ms: Ms
    exposure_ms: Ms | None = None
    clicks: list[Click] | None = None
    client_sent_at: ClientTime | None = Field(None, description="client epoch ms")


class EventsRequest(BaseModel):
    model_config = _BODY
    events: Annotated[list[Event], Field(min_length=1, max_length=MAX_EVENTS)]


class ClassifyRequest(BaseModel):
    model_config = _BODY
    trial_id: Id
    clicks: list[Click] | None = None


REQUESTS = (StartRequest, ResponseRequest, EventsRequest, ClassifyRequest)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def json_object() -> dict[str, Any]:
    """The request body as a JSON object: 415 for another content type, 400 for bad JSON."""
    if request.mimetype != "application/json":
        raise ApiError(415, "Content-Type must be application/json", "Content-Type")
    return parse_json_object(request.get_data(cache=True))


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """`raw` as a JSON object (a request body): 400 for bad JSON or another JSON value."""
    try:
        body = json.loads(raw or b"", parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON ({exc})", "body") from None
    except RecursionError:  # e.g. "[[[[..." 100,000 deep: refuse it, never a 500
        raise ApiError(400, "the body is nested too deeply", "body") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object", "body")
    return body


def body_error(exc: ValidationError, at: str = "", root: Any = None) -> ApiError:
    """The 400 for a ValidationError of the value at dotted path `at` of the body."""
    field, message = first_error(exc, root, at=at, top="body")
    return ApiError(400, f"{field}: {message}", field)


Check = Callable[[Any], Any]


def _check(tp: Any) -> Check:
    """The validating function of a type: pydantic-core's own, without TypeAdapter's Python-level
    wrapper (a quarter of the cost per call, on the response hot path)."""
    return TypeAdapter(tp).validator.validate_python


def _validated(check: Check, value: Any, field: str) -> Any:
    try:
        return check(value)
    except ValidationError as exc:
        raise body_error(exc, field) from None


# One validator per distinct bound, built on first use: building one costs far more than using it.
@functools.lru_cache(maxsize=64)
def _text(max_len: int, choices: tuple[str, ...] | None) -> Check:
    return _check(Literal[choices] if choices is not None else text(max_len))


@functools.lru_cache(maxsize=64)
def _number(lo: float, hi: float) -> Check:
    return _check(Annotated[Float, Field(ge=lo, le=hi, allow_inf_nan=False)])


@functools.lru_cache(maxsize=64)
def _int(lo: int, hi: int) -> Check:
    return _check(Annotated[Int, Field(ge=lo, le=hi)])


_UUID = _check(ClientUuid)
_CLICKS = _check(list[Click])


def _missing(field: str) -> ApiError:
    return ApiError(400, f"{field}: missing", field)


def get_str(
    d: dict[str, Any],
    name: str,
    *,
    required: bool = False,
    max_len: int = NAME_CHARS,
    choices: tuple[str, ...] | None = None,
    field: str | None = None,
) -> str | None:
    field = field or name
    value = d.get(name)
    if value is None:
        if required:
            raise _missing(field)
        return None
    return _validated(_text(max_len, choices), value, field)


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
    return float(_validated(_number(lo, hi), value, field))


def get_int(
    d: dict[str, Any],
    name: str,
    *,
    required: bool = False,
    lo: int = 0,
    hi: int = MAX_ID,
    field: str | None = None,
) -> int | None:
    field = field or name
    value = d.get(name)
    if value is None:
        if required:
            raise _missing(field)
        return None
    return _validated(_int(lo, hi), value, field)


def get_uuid(d: dict[str, Any], name: str) -> str:
    """The canonical form (lower case, hyphenated) of a UUID field."""
    value = d.get(name)
    if value is None:
        raise _missing(name)
    return _validated(_UUID, value, name)


@dataclass(frozen=True)
class ClickIn:
    x: float
    y: float
    t_ms: float
    stroke: int


def parse_clicks(value: Any, *, budget: int, field: str = "clicks") -> list[ClickIn]:
    """Validate ClickMe points (`Click`): at most `budget` of them; strokes are non-decreasing
    integers up to `budget` (a point without one continues the previous point's stroke)."""
    if value is None:
        return []
    if isinstance(value, list) and len(value) > budget:
        raise ApiError(400, f"{field}: has {len(value)} points; the budget is {budget}", field)
    points = _validated(_CLICKS, value, field)
    out: list[ClickIn] = []
    last_stroke = 0
    for i, p in enumerate(points):
        stroke = last_stroke if p.stroke is None else p.stroke
        if not last_stroke <= stroke <= budget:
            where = f"{field}[{i}].stroke"
            problem = "must not decrease" if stroke < last_stroke else f"must be <= {budget}"
            raise ApiError(400, f"{where}: {problem}, got {stroke}", where)
        last_stroke = stroke
        out.append(ClickIn(p.x, p.y, p.t, stroke))
    return out


@dataclass(frozen=True)
class EventIn:
    kind: str
    t_ms: float | None
    trial_id: int | None
    detail: dict[str, Any]


def parse_screen(body: dict[str, Any]) -> Screen | None:
    """The `screen` of a StartRequest body (None: not sent)."""
    value = body.get("screen")
    if value is None:
        return None
    try:
        return Screen.model_validate(value)
    except ValidationError as exc:
        raise body_error(exc, "screen", root=Screen) from None


def parse_events(body: dict[str, Any]) -> list[EventIn]:
    """The `events` of an EventsRequest body."""
    try:
        events = EventsRequest.model_validate(body).events
    except ValidationError as exc:
        raise body_error(exc, root=EventsRequest) from None
    return [EventIn(e.kind, e.t, e.trial_id, e.detail) for e in events]

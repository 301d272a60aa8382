"""A study's task settings, validated when loaded, with defaults for every field.

`StudySettings.from_dict(raw)` accepts the JSON a manifest, the dashboard or a condition gives
and raises `SettingsError` whose `field` names the offending key (dotted for nested keys, e.g.
`staircase.step_ms`). `to_dict()` gives back the JSON stored in `Study.settings`; a condition's
`settings` are overrides merged over the study's (`merged`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from analysis.staircase import StaircaseRule

PLATFORMS = ("prolific", "mturk", "none")
DISPLAY_MODES = ("smooth", "pixels")
MTURK_SUBMIT_URL = "https://www.mturk.com/mturk/externalSubmit"
EXPOSURE_MIN_MS = 100
EXPOSURE_MAX_MS = 1000


class SettingsError(ValueError):
    """A setting is missing, of the wrong type or out of range; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class StaircaseSettings:
    """Transformed up/down staircase on exposure (ms): `down` correct in a row -> shorter by
    `step_ms`, `up` wrong in a row -> longer; clamped to [min_ms, max_ms]."""

    enabled: bool = False
    # The rule's defaults are the shared staircase definition's (analysis.staircase).
    up: int = StaircaseRule.up
    down: int = StaircaseRule.down
    step_ms: float = StaircaseRule.step_ms
    min_ms: float = EXPOSURE_MIN_MS
    max_ms: float = EXPOSURE_MAX_MS
    start_ms: float = StaircaseRule.start_ms
    n_reversals_threshold: int = StaircaseRule.n_reversals_threshold  # last N reversals averaged


@dataclass(frozen=True)
class ConfidenceSettings:
    """An optional confidence rating after each real-or-fake answer, integers min..max."""

    enabled: bool = False
    min: int = 1
    max: int = 4


@dataclass(frozen=True)
class DisplaySettings:
    """How the stored images are drawn for participants (study/display.py): `smooth` enlarges
    each to `size` px with bicubic interpolation and a Gaussian of `blur` stored pixels, then
    thresholds black-and-white images again, so a small binarised drawing shows as strokes with
    round edges; `pixels` sends the file as stored, enlarged nearest-neighbour by the browser.
    Every image of a condition gets the same rendering, real drawings and samples alike."""

    mode: str = "smooth"
    size: int = 512
    blur: float = 0.7


@dataclass(frozen=True)
class StudySettings:
    # Real-or-fake: the image's exposure in ms; None = until the answer (HYPE-infinity mode).
    exposure_ms: float | None = 500.0
    fixation_ms: float = 500.0
    mask_ms: float = 250.0
    staircase: StaircaseSettings = field(default_factory=StaircaseSettings)
    confidence: ConfidenceSettings = field(default_factory=ConfidenceSettings)
    # Both tasks: how the stored images are drawn on the participant's screen.
    display: DisplaySettings = field(default_factory=DisplaySettings)
    # ClickMe: bubble radius as a fraction of the image width; points per trial.
    bubble_radius: float = 0.06
    click_budget: int = 200
    min_clicks: int = 5
    # Both tasks.
    trials_per_participant: int = 20
    n_practice: int = 2
    n_catch: int = 2
    practice_feedback: bool = True
    feedback_classifier: str | None = None  # checkpoint path of the ClickMe feedback classifier
    max_participants: int | None = None
    redirect_platform: str = "prolific"  # prolific | mturk | none
    mturk_submit_url: str = MTURK_SUBMIT_URL
    active_window_minutes: float = 30.0  # a started participant counts for balancing this long

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> StudySettings:
        """Validate `raw` (missing keys take defaults); raises SettingsError naming the field."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise SettingsError("settings", "must be an object")
        values = _check_keys(cls, raw, prefix="")
        out: dict[str, Any] = {}
        for name, value in values.items():
            if name == "staircase":
                out[name] = _staircase(value)
            elif name == "confidence":
                out[name] = _confidence(value)
            elif name == "display":
                out[name] = _display(value)
            else:
                out[name] = _SCALAR_CHECKS[name](name, value)
        settings = cls(**out)
        settings._check_relations()
        return settings

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def merged(self, overrides: dict[str, Any] | None) -> StudySettings:
        """These settings with a condition's overrides on top (nested objects merged by key)."""
        if not overrides:
            return self
        if not isinstance(overrides, dict):
            raise SettingsError("settings", "condition overrides must be an object")
        base = self.to_dict()
        for key, value in overrides.items():
            if isinstance(base.get(key), dict) and isinstance(value, dict):
                base[key] = {**base[key], **value}
            else:
                base[key] = value
        return StudySettings.from_dict(base)

    def _check_relations(self) -> None:
        if self.min_clicks > self.click_budget:
            raise SettingsError("min_clicks", "must not exceed click_budget")
        sc = self.staircase
        if sc.min_ms > sc.max_ms:
            raise SettingsError("staircase.min_ms", "must not exceed staircase.max_ms")
        if not sc.min_ms <= sc.start_ms <= sc.max_ms:
            raise SettingsError("staircase.start_ms", "must lie within [min_ms, max_ms]")
        if self.confidence.min >= self.confidence.max:
            raise SettingsError("confidence.min", "must be below confidence.max")


def _check_keys(cls: type, raw: dict[str, Any], prefix: str) -> dict[str, Any]:
    known = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in known:
            raise SettingsError(f"{prefix}{key}", "unknown setting")
    return dict(raw)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def _number(name: str, value: Any, lo: float, hi: float) -> float:
    if not _is_number(value):
        raise SettingsError(name, "must be a number")
    if not lo <= value <= hi:
        raise SettingsError(name, f"must lie within [{lo:g}, {hi:g}]")
    return float(value)


def _integer(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise SettingsError(name, "must be an integer")
    if not lo <= value <= hi:
        raise SettingsError(name, f"must lie within [{lo}, {hi}]")
    return value


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SettingsError(name, "must be true or false")
    return value


def _optional(check):  # noqa: ANN001, ANN202
    def inner(name: str, value: Any) -> Any:
        return None if value is None else check(name, value)

    return inner


def _text(max_len: int):  # noqa: ANN202
    def inner(name: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise SettingsError(name, "must be a non-empty string")
        if len(value) > max_len:
            raise SettingsError(name, f"must be at most {max_len} characters")
        return value

    return inner


def _platform(name: str, value: Any) -> str:
    if value not in PLATFORMS:
        raise SettingsError(name, f"must be one of {', '.join(PLATFORMS)}")
    return value


def _https_url(name: str, value: Any) -> str:
    value = _text(500)(name, value)
    if not value.startswith("https://"):
        raise SettingsError(name, "must be an https:// URL")
    return value


_SCALAR_CHECKS = {
    "exposure_ms": _optional(lambda n, v: _number(n, v, 10, 60_000)),
    "fixation_ms": lambda n, v: _number(n, v, 0, 10_000),
    "mask_ms": lambda n, v: _number(n, v, 0, 10_000),
    "bubble_radius": lambda n, v: _number(n, v, 0.005, 0.5),
    "click_budget": lambda n, v: _integer(n, v, 1, 10_000),
    "min_clicks": lambda n, v: _integer(n, v, 0, 10_000),
    "trials_per_participant": lambda n, v: _integer(n, v, 1, 5_000),
    "n_practice": lambda n, v: _integer(n, v, 0, 100),
    "n_catch": lambda n, v: _integer(n, v, 0, 1_000),
    "practice_feedback": _boolean,
    "feedback_classifier": _optional(_text(500)),
    "max_participants": _optional(lambda n, v: _integer(n, v, 1, 10_000_000)),
    "redirect_platform": _platform,
    "mturk_submit_url": _https_url,
    "active_window_minutes": lambda n, v: _number(n, v, 1, 7 * 24 * 60),
}


def _nested(cls: type, name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SettingsError(name, "must be an object")
    return _check_keys(cls, value, prefix=f"{name}.")


def _staircase(value: Any) -> StaircaseSettings:
    raw = _nested(StaircaseSettings, "staircase", value)
    checks = {
        "enabled": _boolean,
        "up": lambda n, v: _integer(n, v, 1, 10),
        "down": lambda n, v: _integer(n, v, 1, 10),
        "step_ms": lambda n, v: _number(n, v, 1, 1_000),
        "min_ms": lambda n, v: _number(n, v, EXPOSURE_MIN_MS, EXPOSURE_MAX_MS),
        "max_ms": lambda n, v: _number(n, v, EXPOSURE_MIN_MS, EXPOSURE_MAX_MS),
        "start_ms": lambda n, v: _number(n, v, EXPOSURE_MIN_MS, EXPOSURE_MAX_MS),
        "n_reversals_threshold": lambda n, v: _integer(n, v, 1, 100),
    }
    return StaircaseSettings(**{k: checks[k](f"staircase.{k}", v) for k, v in raw.items()})


def _confidence(value: Any) -> ConfidenceSettings:
    if isinstance(value, bool):  # shorthand: "confidence": true
        return ConfidenceSettings(enabled=value)
    raw = _nested(ConfidenceSettings, "confidence", value)
    checks = {
        "enabled": _boolean,
        "min": lambda n, v: _integer(n, v, 0, 100),
        "max": lambda n, v: _integer(n, v, 1, 100),
    }
    return ConfidenceSettings(**{k: checks[k](f"confidence.{k}", v) for k, v in raw.items()})


def _display(value: Any) -> DisplaySettings:
    raw = _nested(DisplaySettings, "display", value)

    def mode(name: str, v: Any) -> str:
        if v not in DISPLAY_MODES:
            raise SettingsError(name, f"must be one of {', '.join(DISPLAY_MODES)}")
        return v

    checks = {
        "mode": mode,
        "size": lambda n, v: _integer(n, v, 16, 1024),
        "blur": lambda n, v: _number(n, v, 0, 3),
    }
    return DisplaySettings(**{k: checks[k](f"display.{k}", v) for k, v in raw.items()})

"""A study's task settings, validated when loaded, with defaults for every field.

`StudySettings.from_dict(raw)` accepts the JSON a manifest, the dashboard or a condition gives
and raises `SettingsError` whose `field` names the offending key (dotted for nested keys, e.g.
`staircase.step_ms`). `to_dict()` gives back the JSON stored in `Study.settings`; a condition's
`settings` are overrides merged over the study's (`merged`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic.dataclasses import dataclass

from analysis.staircase import StaircaseRule
from fieldcheck import Bool, Float, Int, field_error, first_error, text

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


def _whole(value: Any) -> Any:
    """A dashboard or spreadsheet may write 20 as 20.0: a whole float counts as an integer."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _https(value: str) -> str:
    if not value.startswith("https://"):
        raise ValueError("must be an https:// URL")
    return value


def _ints(lo: int, hi: int) -> Any:
    return Annotated[Int, BeforeValidator(_whole), Field(ge=lo, le=hi)]


def _numbers(lo: float, hi: float) -> Any:
    return Annotated[Float, Field(ge=lo, le=hi)]


# Unknown keys are refused (a typo would otherwise be a silently ignored setting); NaN and
# infinities are refused everywhere.
_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)
ExposureMs = _numbers(EXPOSURE_MIN_MS, EXPOSURE_MAX_MS)


@dataclass(frozen=True, config=_STRICT)
class StaircaseSettings:
    """Transformed up/down staircase on exposure (ms): `down` correct in a row -> shorter by
    `step_ms`, `up` wrong in a row -> longer; clamped to [min_ms, max_ms]."""

    enabled: Annotated[Bool, Field(description="Adapt the exposure with the staircase (real-or-fake).")] = False
    # The rule's defaults are the shared staircase definition's (analysis.staircase).
    up: Annotated[_ints(1, 10), Field(description="Wrong answers in a row that make the exposure longer.")] = (
        StaircaseRule.up)
    down: Annotated[_ints(1, 10), Field(description="Right answers in a row that make the exposure shorter.")] = (
        StaircaseRule.down)
    step_ms: Annotated[_numbers(1, 1_000), Field(description="How much one step changes the exposure, in ms.")] = (
        StaircaseRule.step_ms)
    min_ms: Annotated[ExposureMs, Field(description="The shortest exposure the staircase reaches, in ms.")] = (
        EXPOSURE_MIN_MS)
    max_ms: Annotated[ExposureMs, Field(description="The longest exposure the staircase reaches, in ms.")] = (
        EXPOSURE_MAX_MS)
    start_ms: Annotated[ExposureMs, Field(description="The first trial's exposure, in ms.")] = (
        StaircaseRule.start_ms)
    n_reversals_threshold: Annotated[_ints(1, 100), Field(description="The threshold is the mean exposure at this many last reversals.")] = (
        StaircaseRule.n_reversals_threshold)

    @model_validator(mode="after")
    def _ordered(self) -> StaircaseSettings:
        if self.min_ms > self.max_ms:
            raise field_error("min_ms", "must not exceed staircase.max_ms")
        if not self.min_ms <= self.start_ms <= self.max_ms:
            raise field_error("start_ms", "must lie within [min_ms, max_ms]")
        return self


@dataclass(frozen=True, config=_STRICT)
class ConfidenceSettings:
    """An optional confidence rating after each real-or-fake answer, integers min..max."""

    enabled: Annotated[Bool, Field(description="Ask for a confidence rating after each answer.")] = False
    min: Annotated[_ints(0, 100), Field(description="The lowest rating.")] = 1
    max: Annotated[_ints(1, 100), Field(description="The highest rating.")] = 4

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        """`"confidence": true` is short for `{"enabled": true}`."""
        return {"enabled": value} if isinstance(value, bool) else value

    @model_validator(mode="after")
    def _ordered(self) -> ConfidenceSettings:
        if self.min >= self.max:
            raise field_error("min", "must be below confidence.max")
        return self


@dataclass(frozen=True, config=_STRICT)
class DisplaySettings:
    """How the stored images are drawn for participants (study/display.py): `smooth` enlarges
    each to `size` px with bicubic interpolation and a Gaussian of `blur` stored pixels, then
    thresholds black-and-white images again, so a small binarised drawing shows as strokes with
    round edges; `pixels` sends the file as stored, enlarged nearest-neighbour by the browser.
    Every image of a condition gets the same rendering, real drawings and samples alike."""

    mode: Annotated[Literal[DISPLAY_MODES], Field(description="smooth: enlarged with bicubic interpolation and a blur, black-and-white images thresholded again; pixels: the stored file, enlarged by the browser.")] = "smooth"
    size: Annotated[_ints(16, 1024), Field(description="The drawn image's width and height in px (smooth mode).")] = 512
    blur: Annotated[_numbers(0, 3), Field(description="Gaussian blur in stored pixels before thresholding (smooth mode).")] = 0.7


def _described(kind: Any, description: str) -> Any:
    """`kind` with a description, which the JSON Schema (and the researcher's form) shows."""
    return Annotated[kind, Field(description=description)]


VIEWPORT_MAX_PX = 10_000


@dataclass(frozen=True, config=_STRICT)
class DeviceSettings:
    """Which devices may take part. Phones and tablets are told from the browser's user agent;
    window and screen sizes are those the browser reports when the participant starts. A
    participant whose device does not qualify is screened out before any trial, with a page that
    says what the study needs and the platform's screen-out code.

    The rule is study/participation/devices.py: the server decides, never the page alone."""

    phones: _described(Bool, "Phones may take part (told from the browser's user agent).") = True
    tablets: _described(Bool, "Tablets may take part (told from the browser's user agent).") = True
    min_viewport_width: _described(
        _ints(0, VIEWPORT_MAX_PX),
        "Smallest browser window width in CSS pixels, as reported at the start; 0: no minimum.",
    ) = 0
    min_viewport_height: _described(
        _ints(0, VIEWPORT_MAX_PX),
        "Smallest browser window height in CSS pixels, as reported at the start; 0: no minimum.",
    ) = 0
    min_screen_width: _described(
        _ints(0, VIEWPORT_MAX_PX) | None,
        "Optional screen-size check: smallest screen width in CSS pixels, with the height; the "
        "screen's longer side is compared with the larger minimum, so turning a device does "
        "not matter; empty: not checked.",
    ) = None
    min_screen_height: _described(
        _ints(0, VIEWPORT_MAX_PX) | None,
        "Optional screen-size check: smallest screen height in CSS pixels; empty: not checked.",
    ) = None

    @model_validator(mode="after")
    def _screen_pair(self) -> DeviceSettings:
        if (self.min_screen_width is None) != (self.min_screen_height is None):
            missing = "min_screen_height" if self.min_screen_height is None else "min_screen_width"
            raise field_error(missing, "the screen-size check needs both a width and a height")
        return self


LANGUAGES = ("en", "de")  # those with a catalog in study/translations (study/i18n.py)
CONSENT_MAX_CHARS = 20_000
INSTRUCTIONS_MAX_CHARS = 10_000


@dataclass(frozen=True, config=_STRICT)
class TextSettings:
    """The researcher's own participant texts, shown instead of the built-in ones (which are in
    the study's language). Plain text: shown as written, line breaks kept, never read as HTML."""

    consent: _described(
        text(CONSENT_MAX_CHARS) | None,
        "Consent text shown above the agree button (plain text, line breaks kept); empty: the "
        "built-in text in the study's language.",
    ) = None
    instructions: _described(
        text(INSTRUCTIONS_MAX_CHARS) | None,
        "Task instructions shown before the first trial (plain text, line breaks kept); empty: "
        "the built-in instructions of the study's task in its language.",
    ) = None


@dataclass(frozen=True, config=_STRICT)
class EndingCodes:
    """The codes a participant takes back to the platform for the ends other than a completed
    study, each the code of that type in the platform's study (Prolific: the `completion_codes`
    entry whose code_type is FAILED_ATTENTION_CHECK, INCOMPATIBLE_DEVICE or NO_CONSENT). Empty:
    the study's screened_out_code."""

    failed_attention_check: text(64) | None = None
    incompatible_device: text(64) | None = None
    no_consent: text(64) | None = None


@dataclass(frozen=True, config=_STRICT)
class StudySettings:
    # Real-or-fake: the image's exposure in ms; None = until the answer (HYPE-infinity mode).
    exposure_ms: Annotated[_numbers(10, 60_000) | None, Field(description="Real-or-fake: how long the image is shown, in ms; empty: until the participant answers.")] = 500.0
    fixation_ms: Annotated[_numbers(0, 10_000), Field(description="Real-or-fake: the fixation cross before the image, in ms.")] = 500.0
    mask_ms: Annotated[_numbers(0, 10_000), Field(description="Real-or-fake: the mask after the image, in ms.")] = 250.0
    staircase: StaircaseSettings = field(default_factory=StaircaseSettings)
    confidence: ConfidenceSettings = field(default_factory=ConfidenceSettings)
    # Both tasks: how the stored images are drawn on the participant's screen.
    display: DisplaySettings = field(default_factory=DisplaySettings)
    # Both tasks: which devices and screen sizes may take part.
    devices: DeviceSettings = field(default_factory=DeviceSettings)
    # ClickMe: bubble radius as a fraction of the image width; points per trial.
    bubble_radius: Annotated[_numbers(0.005, 0.5), Field(description="ClickMe: the radius of a painted bubble, as a fraction of the image width.")] = 0.06
    click_budget: Annotated[_ints(1, 10_000), Field(description="ClickMe: the points a participant may paint on one image.")] = 200
    min_clicks: Annotated[_ints(0, 10_000), Field(description="ClickMe: the points needed before a trial can be submitted.")] = 5
    # Both tasks.
    trials_per_participant: Annotated[_ints(1, 5_000), Field(description="Main trials per participant.")] = 20
    n_practice: Annotated[_ints(0, 100), Field(description="Practice trials before the main ones.")] = 2
    n_catch: Annotated[_ints(0, 1_000), Field(description="Catch trials (from the manifest's catch rows) among the main ones.")] = 2
    practice_feedback: Annotated[Bool, Field(description="Tell the participant after each practice trial whether the answer was right.")] = True
    feedback_classifier: Annotated[text(500) | None, Field(description="ClickMe: checkpoint path of the classifier whose feedback participants see; empty: none.")] = None
    max_participants: Annotated[_ints(1, 10_000_000) | None, Field(description="Participants who may take part (completed, or started and recently active); empty: no limit.")] = None
    redirect_platform: Annotated[Literal[PLATFORMS], Field(description="Where the debrief sends a participant: Prolific, MTurk's submit form, or nowhere.")] = "prolific"
    mturk_submit_url: Annotated[text(500), AfterValidator(_https), Field(description="MTurk: the external-submit URL (an https:// URL).")] = MTURK_SUBMIT_URL
    active_window_minutes: Annotated[_numbers(1, 7 * 24 * 60), Field(description="A started participant counts as taking part for this many minutes after last being seen.")] = 30.0
    # Screen-out: a participant with more catch trials wrong than this is screened out when
    # finishing (None: never), and gets the failed_attention_check code.
    max_catch_failures: _ints(0, 1_000) | None = None
    ending_codes: EndingCodes = field(default_factory=EndingCodes)
    # Participant pages: their language and the researcher's own consent and instructions.
    language: _described(
        Literal[LANGUAGES],
        "The language of the participant pages: en (English) or de (German).",
    ) = "en"
    texts: TextSettings = field(default_factory=TextSettings)

    @model_validator(mode="after")
    def _within_budget(self) -> StudySettings:
        if self.min_clicks > self.click_budget:
            raise field_error("min_clicks", "must not exceed click_budget")
        return self

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> StudySettings:
        """Validate `raw` (missing keys take defaults); raises SettingsError naming the field."""
        try:
            return _SETTINGS.validate_python({} if raw is None else raw)
        except ValidationError as exc:
            raise SettingsError(*first_error(exc, cls, top="settings")) from None

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


_SETTINGS = TypeAdapter(StudySettings)

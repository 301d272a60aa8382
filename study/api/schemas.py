"""The participant API's reply bodies as pydantic models.

They are what the OpenAPI document publishes (study/api/openapi.py); the request bodies are in
study/validation.py. The views build plain dicts (a model per reply would cost CPU on the
response hot path for nothing), so tests/study/test_openapi.py holds real replies of every
endpoint against these models and the served document: a key added to a reply and not here
fails there (unknown keys are refused).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from study.validation import ANSWERS

_REPLY = ConfigDict(extra="forbid", frozen=True)
Index = Annotated[int, Field(ge=0)]


class ErrorDetail(BaseModel):
    model_config = _REPLY
    message: Annotated[str, Field(min_length=1)]
    field: Annotated[str | None, Field(description="the request field at fault, dotted "
                                       "(`clicks[3].x`), or a header name")]


class Error(BaseModel):
    """Every error of the API, with a 4xx (or 5xx) status."""

    model_config = _REPLY
    error: ErrorDetail


class Started(BaseModel):
    model_config = _REPLY
    token: Annotated[str, Field(description="send as X-Participant-Token")]
    participant_id: str
    condition: str | None
    n_trials: int
    current_index: Index
    preview: Literal[True] | None = Field(None, description="only in a researcher's preview")


class ClickMeSettings(BaseModel):
    """What a ClickMe page needs: bubble size (fraction of the image width), points per trial."""

    model_config = _REPLY
    bubble_radius: float
    click_budget: int
    min_clicks: int
    feedback: Annotated[bool, Field(description="the classifier's answer can be asked for")]
    pixelated: Annotated[bool, Field(description="enlarge the image nearest-neighbour")]


class RealFakeSettings(BaseModel):
    """What a real-or-fake page needs (the exposure is the trial's own)."""

    model_config = _REPLY
    pixelated: bool
    fixation_ms: float
    mask_ms: float
    confidence: bool
    confidence_min: int
    confidence_max: int


class Trial(BaseModel):
    model_config = _REPLY
    id: int
    index: Index
    n_trials: int
    kind: Literal["practice", "main", "catch"]
    task: Literal["clickme", "realfake"]
    image_url: str
    exposure_ms: Annotated[float | None, Field(description="null: until the answer")]
    settings: ClickMeSettings | RealFakeSettings
    class_text: Annotated[str | None, Field(
        description="ClickMe only: what the image shows, in words (null: none)")] = None
    answer_key: Literal[ANSWERS] | None = Field(
        None, description="real-or-fake practice trials with feedback only")


class CurrentTrial(BaseModel):
    model_config = _REPLY
    trial: Trial
    preview: Literal[True] | None = None


class Done(BaseModel):
    model_config = _REPLY
    done: Literal[True]
    n_trials: int
    current_index: Index
    preview: Literal[True] | None = None


class Feedback(BaseModel):
    model_config = _REPLY
    truth: Literal[ANSWERS] | None = Field(
        None, description="practice trials of a study with practice feedback only")


class ResponseResult(BaseModel):
    model_config = _REPLY
    response_id: Annotated[int | None, Field(description="null in a preview (nothing stored)")]
    trial_id: int
    correct: Annotated[bool | None, Field(description="real-or-fake only")]
    feedback: Feedback
    next_index: Index
    preview: Literal[True] | None = None


class EventsStored(BaseModel):
    model_config = _REPLY
    stored: Annotated[int, Field(ge=0)]


class Completed(BaseModel):
    model_config = _REPLY
    completion_code: Annotated[str | None, Field(
        description="the code for the platform: the completion code, or the screen-out code of a "
                    "participant screened out at the end; null when the study has none for it")]
    redirect_url: Annotated[str | None, Field(description="the platform's return URL, if any")]
    preview: Literal[True] | None = None


class Classified(BaseModel):
    model_config = _REPLY
    class_text: Annotated[str | None, Field(
        description="the class the classifier chose, in words (null: none)")]
    probability: Annotated[float, Field(ge=0, le=1)]
    correct: bool


REPLIES = (Error, Started, CurrentTrial, Done, ResponseResult, EventsStored, Completed, Classified)

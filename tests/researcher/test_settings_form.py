"""The builder's settings form is generated from the settings model: every field of
StudySettings has an input, a field added to a model appears with its kind, bounds, choices,
default and description, and a submitted form reads back into the raw settings (pure)."""

from __future__ import annotations

import dataclasses
import typing
from typing import Annotated, Literal

import pytest
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass

from study.researcher.settings_form import (
    SettingGroup,
    all_fields,
    field_values,
    form_settings,
    settings_fields,
)
from study.settings import StudySettings


def _dotted_names(model: type, prefix: str = "") -> set[str]:
    """Every leaf setting of `model`, walked with the standard dataclasses API."""
    names: set[str] = set()
    hints = typing.get_type_hints(model)
    for f in dataclasses.fields(model):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            names |= _dotted_names(kind, f"{prefix}{f.name}.")
        else:
            names.add(prefix + f.name)
    return names


def test_every_setting_of_the_model_has_one_field() -> None:
    fields = all_fields(settings_fields(StudySettings))
    assert [f.name for f in fields if f.name not in _dotted_names(StudySettings)] == []
    assert {f.name for f in fields} == _dotted_names(StudySettings)
    assert len(fields) == len({f.name for f in fields})


def test_kinds_bounds_choices_and_defaults_come_from_the_declarations() -> None:
    by_name = {f.name: f for f in all_fields(settings_fields(StudySettings))}
    step = by_name["staircase.step_ms"]
    assert (step.kind, step.minimum, step.maximum, step.default) == ("number", 1, 1_000, 50.0)
    budget = by_name["click_budget"]
    assert (budget.kind, budget.minimum, budget.maximum, budget.default) == ("integer", 1, 10_000, 200)
    assert by_name["exposure_ms"].optional and not by_name["fixation_ms"].optional
    assert by_name["redirect_platform"].choices == ("prolific", "mturk", "none")
    assert by_name["practice_feedback"].kind == "checkbox"
    assert by_name["mturk_submit_url"].max_length == 500
    assert not by_name["mturk_submit_url"].multiline
    assert "until the participant answers" in by_name["exposure_ms"].help
    defaults = StudySettings().to_dict()
    assert by_name["display.size"].default == defaults["display"]["size"]


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class _Inner:
    """A nested block. More text."""

    level: Annotated[int, Field(ge=0, le=9, description="How high.")] = 3


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class _Future:
    colour: Literal["red", "blue"] = "blue"
    limit: Annotated[float, Field(gt=0.5, lt=2)] | None = None
    inner: _Inner = dataclasses.field(default_factory=_Inner)
    tags: list[str] = dataclasses.field(default_factory=list)
    letter: Annotated[str, Field(max_length=5_000)] | None = None


def test_a_new_setting_appears_without_form_code() -> None:
    form = settings_fields(_Future)
    (group,) = [g for g in form if isinstance(g, SettingGroup)]
    assert (group.name, group.help) == ("inner", "A nested block. More text.")
    by_name = {f.name: f for f in all_fields(form)}
    assert set(by_name) == {"colour", "limit", "inner.level", "tags", "letter"}
    assert by_name["letter"].multiline and not by_name["colour"].multiline
    assert (by_name["colour"].kind, by_name["colour"].choices) == ("choice", ("red", "blue"))
    limit = by_name["limit"]
    assert (limit.kind, limit.optional, limit.minimum, limit.maximum) == ("number", True, 0.5, 2)
    level = by_name["inner.level"]
    assert (level.kind, level.maximum, level.help, level.default) == ("integer", 9, "How high.", 3)
    assert (by_name["tags"].kind, by_name["tags"].default) == ("json", [])
    raw, errors = form_settings(form, {"settings.inner.level": ["7"], "settings.tags": ['["a"]'],
                                       "settings.limit": [""], "settings.colour": ["red"]})
    assert errors == {}
    assert raw == {"inner": {"level": 7}, "tags": ["a"], "limit": None, "colour": "red"}


def test_submitted_values_read_back() -> None:
    form = settings_fields(StudySettings)
    raw, errors = form_settings(form, {
        "settings.exposure_ms": [""],  # optional: empty is None
        "settings.staircase.enabled": ["false", "true"],  # hidden false, then the ticked box
        "settings.practice_feedback": ["false"],  # unticked
        "settings.click_budget": ["120"],
        "settings.display.mode": ["pixels"],
    })
    assert errors == {}
    assert raw == {"exposure_ms": None, "staircase": {"enabled": True}, "practice_feedback": False,
                   "click_budget": 120, "display": {"mode": "pixels"}}
    StudySettings.from_dict(raw)  # the model accepts what the form reads


@pytest.mark.parametrize(("name", "sent", "message"), [
    ("click_budget", "12.5", "expected a whole number"),
    ("fixation_ms", "soon", "expected a number"),
    ("fixation_ms", "nan", "expected a finite number"),
    ("fixation_ms", "", "must not be empty"),
    ("display.mode", "blurry", "must be one of smooth, pixels"),
])
def test_inputs_of_the_wrong_kind_name_their_field(name: str, sent: str, message: str) -> None:
    raw, errors = form_settings(settings_fields(StudySettings), {f"settings.{name}": [sent]})
    assert errors == {name: message} and raw == {}


def test_values_shown_come_from_the_sent_form_then_the_settings_then_defaults() -> None:
    form = settings_fields(StudySettings)
    shown = field_values(form, {"click_budget": 90, "staircase": {"enabled": True}},
                         {"settings.fixation_ms": ["-3"]})
    assert shown["fixation_ms"] == "-3" and shown["click_budget"] == "90"
    assert shown["staircase.enabled"] is True and shown["mask_ms"] == "250"
    assert shown["exposure_ms"] == "500" and shown["feedback_classifier"] == ""

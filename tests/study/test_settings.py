"""StudySettings: defaults, validation errors that name the field, condition overrides."""

from __future__ import annotations

import pytest

from study.settings import SettingsError, StudySettings


def test_defaults_round_trip() -> None:
    s = StudySettings.from_dict({})
    assert s.staircase.min_ms == 100 and s.staircase.max_ms == 1000 and s.staircase.start_ms == 500
    assert StudySettings.from_dict(s.to_dict()) == s


def test_values_are_kept() -> None:
    s = StudySettings.from_dict(
        {"exposure_ms": None, "click_budget": 50, "staircase": {"enabled": True, "step_ms": 20},
         "confidence": True, "redirect_platform": "mturk"}
    )
    assert s.exposure_ms is None and s.click_budget == 50
    assert s.staircase.enabled and s.staircase.step_ms == 20 and s.staircase.down == 3
    assert s.confidence.enabled and s.redirect_platform == "mturk"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"click_budget": "many"}, "click_budget"),
        ({"click_budget": 0}, "click_budget"),
        ({"bubble_radius": True}, "bubble_radius"),
        ({"trials_per_participant": 2.5}, "trials_per_participant"),
        ({"staircase": {"step_ms": -1}}, "staircase.step_ms"),
        ({"staircase": {"min_ms": 50}}, "staircase.min_ms"),
        ({"staircase": {"start_ms": 900, "max_ms": 800}}, "staircase.start_ms"),
        ({"staircase": {"bogus": 1}}, "staircase.bogus"),
        ({"staircase": []}, "staircase"),
        ({"confidence": {"min": 5, "max": 3}}, "confidence.min"),
        ({"min_clicks": 30, "click_budget": 10}, "min_clicks"),
        ({"redirect_platform": "facebook"}, "redirect_platform"),
        ({"mturk_submit_url": "http://x"}, "mturk_submit_url"),
        ({"exposure_ms": float("nan")}, "exposure_ms"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_errors_name_the_field(raw: dict, field: str) -> None:
    with pytest.raises(SettingsError) as err:
        StudySettings.from_dict(raw)
    assert err.value.field == field
    assert field in str(err.value)


def test_not_an_object() -> None:
    with pytest.raises(SettingsError) as err:
        StudySettings.from_dict(["x"])  # type: ignore[arg-type]
    assert err.value.field == "settings"


def test_condition_overrides_merge_nested() -> None:
    base = StudySettings.from_dict({"staircase": {"enabled": True, "step_ms": 40}})
    s = base.merged({"staircase": {"start_ms": 700}, "exposure_ms": 200})
    assert s.staircase.enabled and s.staircase.step_ms == 40 and s.staircase.start_ms == 700
    assert s.exposure_ms == 200
    with pytest.raises(SettingsError) as err:
        base.merged({"staircase": {"start_ms": 5000}})
    assert err.value.field == "staircase.start_ms"

"""The study builder: a generated input for every setting, errors next to their field with
nothing stored, a study from an uploaded manifest or from a stored study's stimuli, the
settings editor (each save a new design version) and duplication."""

from __future__ import annotations

import dataclasses
import io
import re
import typing
from pathlib import Path

from researcher_helpers import create_demo_study, manifest_rows, populate, write_manifest_csv
from sqlalchemy import func, select

from study import db
from study.participation.design import current_design
from study.settings import StudySettings
from study.tables import Condition, DesignVersion, Participant, Stimulus, Study


def _leaves(model: type, prefix: str = "") -> list[str]:
    hints = typing.get_type_hints(model)
    out: list[str] = []
    for f in dataclasses.fields(model):
        if dataclasses.is_dataclass(hints[f.name]):
            out += _leaves(hints[f.name], f"{prefix}{f.name}.")
        else:
            out.append(prefix + f.name)
    return out


def _field_block(page: str, name: str) -> str:
    """The HTML of one generated setting (its input, error and help)."""
    found = re.search(rf'<div class="setting[^"]*" data-setting="{re.escape(name)}">(.*?)</div>',
                      page, re.S)
    assert found, name
    return found.group(1)


def _n(app, model) -> int:
    with app.app_context():
        return db.session().scalar(select(func.count()).select_from(model))


def test_every_setting_has_an_input_with_its_default_and_help(logged_in) -> None:
    page = logged_in.get("/researcher/studies/new").get_data(as_text=True)
    for name in _leaves(StudySettings):
        block = _field_block(page, name)
        assert f'name="settings.{name}"' in block
        assert "Default:" in block
    step = _field_block(page, "staircase.step_ms")
    assert 'value="50"' in step and 'min="1"' in step and 'max="1000"' in step
    assert "How much one step changes the exposure" in step


def test_out_of_range_value_shows_the_error_next_to_its_field_and_stores_nothing(
        app, logged_in, stimuli_dir) -> None:
    data = stimuli_dir(2, 2).read_bytes()
    form = {"manifest": (io.BytesIO(data), "manifest.csv"), "image_folder": "",
            "settings.staircase.step_ms": "0", "settings.click_budget": "300",
            "settings.min_clicks": "2"}
    resp = logged_in.post("/researcher/studies/new", data=form, content_type="multipart/form-data")
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    block = _field_block(page, "staircase.step_ms")
    assert 'class="field-error"' in block and "must be &gt;= 1, got 0" in block
    assert 'value="0"' in block  # the sent value is shown again
    assert 'value="300"' in _field_block(page, "click_budget")
    assert 'class="field-error"' not in _field_block(page, "click_budget")
    assert _n(app, Study) == 0 and _n(app, DesignVersion) == 0


def test_builder_creates_a_study_from_an_upload_and_from_stored_stimuli(app, logged_in) -> None:
    root = Path(app.config["STIMULI_ROOT"])
    data = write_manifest_csv(root / "b1", manifest_rows(root / "b1", 2, 2)).read_bytes()
    form = {"manifest": (io.BytesIO(data), "manifest.csv"), "image_folder": "b1", "slug": "up",
            "task": "realfake", "settings.exposure_ms": "", "settings.n_catch": "0",
            "settings.confidence.enabled": ["false", "true"], "settings.confidence.max": "6",
            "settings": '{"conditions": ["a", "b"]}'}
    resp = logged_in.post("/researcher/studies/new", data=form, content_type="multipart/form-data")
    assert resp.status_code == 302, resp.get_data(as_text=True)
    picked = {"stimuli_from": "up", "slug": "picked", "task": "realfake",
              "settings.trials_per_participant": "3", "settings.n_practice": "0"}
    assert logged_in.post("/researcher/studies/new", data=picked).status_code == 302
    wrong_task = {**picked, "slug": "cm", "task": "clickme"}
    resp = logged_in.post("/researcher/studies/new", data=wrong_task)
    assert resp.status_code == 400
    assert "up is a realfake study" in _stimuli_from_error(resp.get_data(as_text=True))
    neither = logged_in.post("/researcher/studies/new", data={"slug": "none"})
    assert "choose a manifest file" in neither.get_data(as_text=True)
    with app.app_context():
        s = db.session()
        up = s.scalar(select(Study).where(Study.slug == "up"))
        assert up.settings["exposure_ms"] is None and up.settings["confidence"] == {
            "enabled": True, "min": 1, "max": 6}
        assert sorted(c.name for c in up.conditions) == ["a", "b"]
        copy = s.scalar(select(Study).where(Study.slug == "picked"))
        assert copy.settings["trials_per_participant"] == 3 and copy.settings["n_catch"] == 0
        assert copy.settings["exposure_ms"] == 500.0  # the form's default, not the source's
        assert sorted((x.stimulus_key, x.sha256) for x in copy.stimuli) == sorted(
            (x.stimulus_key, x.sha256) for x in up.stimuli)
        assert {x.study_id for x in copy.stimuli} == {copy.id}
        assert s.scalar(select(func.count()).select_from(Study)) == 2


def _stimuli_from_error(page: str) -> str:
    found = re.search(r'name="stimuli_from".*?</label>(<p class="field-error"[^>]*>[^<]*</p>)',
                      page, re.S)
    assert found
    return found.group(1)


def test_editing_settings_makes_a_new_version_and_bad_input_changes_nothing(
        app, logged_in, stimuli_dir) -> None:
    create_demo_study(app, stimuli_dir(2, 2))
    page = logged_in.get("/researcher/studies/demo/settings").get_data(as_text=True)
    assert 'id="preview-link" href="/s/demo?preview=1"' in page
    with app.app_context():
        study = db.session().scalar(select(Study).where(Study.slug == "demo"))
        before, settings_before = current_design(db.session(), study)[0], dict(study.settings)
    assert f'<code id="current-design">{before}</code>' in page

    bad = logged_in.post("/researcher/studies/demo/settings",
                         data={"settings.staircase.min_ms": "900", "settings.staircase.max_ms": "200"})
    assert bad.status_code == 400
    assert "must not exceed staircase.max_ms" in _field_block(bad.get_data(as_text=True),
                                                              "staircase.min_ms")
    with app.app_context():
        assert db.session().scalar(select(Study.settings)) == settings_before

    ok = logged_in.post("/researcher/studies/demo/settings",
                        data={"settings.click_budget": "150"}, follow_redirects=True)
    assert ok.status_code == 200
    with app.app_context():
        study = db.session().scalar(select(Study).where(Study.slug == "demo"))
        after = current_design(db.session(), study)[0]
        assert study.settings["click_budget"] == 150
        assert db.session().get(DesignVersion, after).settings["click_budget"] == 150
    assert after != before and f"design version {after[:12]}" in ok.get_data(as_text=True)


def test_duplicate_has_the_same_design_and_no_participants(app, logged_in, stimuli_dir) -> None:
    sid = create_demo_study(app, stimuli_dir(2, 2))
    populate(app, sid, 2, 3)
    resp = logged_in.post("/researcher/studies/demo/duplicate", data={"slug": "demo-2"})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/studies/demo-2/settings")
    again = logged_in.post("/researcher/studies/demo/duplicate", data={"slug": "demo-2"},
                           follow_redirects=True)
    assert "a study called &#39;demo-2&#39; already exists" in again.get_data(as_text=True)
    with app.app_context():
        s = db.session()
        source = s.get(Study, sid)
        copy = s.scalar(select(Study).where(Study.slug == "demo-2"))
        assert (copy.status, copy.task, copy.settings) == ("draft", source.task, source.settings)
        assert sorted(c.name for c in copy.conditions) == sorted(c.name for c in source.conditions)
        assert current_design(s, copy)[0] == current_design(s, source)[0]
        assert s.scalar(select(func.count()).select_from(Participant)
                        .where(Participant.study_id == copy.id)) == 0
        assert s.scalar(select(func.count()).select_from(Stimulus)
                        .where(Stimulus.study_id == copy.id)) == len(source.stimuli)
        assert s.scalar(select(func.count()).select_from(Study)) == 2
        assert s.scalar(select(func.count()).select_from(Condition)) == 2 * len(source.conditions)

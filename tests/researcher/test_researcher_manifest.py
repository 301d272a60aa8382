"""Manifest parsing and validation (docs/formats.md section 1) and study creation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from researcher_helpers import manifest_rows, write_manifest_csv, write_manifest_json
from sqlalchemy import select

from study import db, manifest
from study.tables import Condition, Stimulus, Study


def _problems(exc: manifest.ManifestError) -> set[tuple]:
    return {(p.row, p.column) for p in exc.problems}


def test_csv_and_json_manifests_parse_to_the_same_rows(tmp_path):
    rows = manifest_rows(tmp_path, 2, 2)
    a = manifest.read_manifest(write_manifest_csv(tmp_path, rows))
    b = manifest.read_manifest(write_manifest_json(tmp_path, rows))
    assert [r.stimulus_id for r in a] == [r.stimulus_id for r in b]
    fake = a[2]
    assert (fake.source, fake.model, fake.guidance, fake.steps, fake.seed) == ("model", "cfgdm", 1.5, 50, 102)
    assert a[0].model is None and a[0].guidance is None and a[0].role == "main"
    assert fake.generation()["sampler"] == "ddim"


def test_errors_name_row_and_column(tmp_path):
    rows = manifest_rows(tmp_path, 2, 2)
    rows[0]["source"] = "synthetic"
    rows[1]["sha256"] = "xyz"
    rows[2]["steps"] = "ten"
    rows[3]["model"] = ""
    rows[3]["stimulus_id"] = rows[0]["stimulus_id"]
    with pytest.raises(manifest.ManifestError) as e:
        manifest.read_manifest(write_manifest_csv(tmp_path, rows))
    assert _problems(e.value) == {(1, "source"), (2, "sha256"), (3, "steps"), (4, "model"), (4, "stimulus_id")}
    text = str(e.value)
    assert "row 1, column source: must be one of real, model" in text
    assert "row 4, column stimulus_id: duplicate of row 1" in text


def test_missing_required_column_and_bad_json(tmp_path):
    (tmp_path / "m.csv").write_text("stimulus_id,path\na,b.png\n")
    with pytest.raises(manifest.ManifestError) as e:
        manifest.read_manifest(tmp_path / "m.csv")
    assert {"sha256", "source", "class_label", "dataset", "split"} <= {p.column for p in e.value.problems}
    (tmp_path / "m.json").write_text('{"stimuli": [1]}')
    with pytest.raises(manifest.ManifestError, match="row 1: must be an object"):
        manifest.read_manifest(tmp_path / "m.json")
    (tmp_path / "m2.json").write_text('{"stimuli": ')
    with pytest.raises(manifest.ManifestError, match="not valid JSON"):
        manifest.read_manifest(tmp_path / "m2.json")


def test_paths_may_not_leave_the_folder(tmp_path):
    rows = manifest_rows(tmp_path, 1, 1)
    rows[1]["path"] = "../secret.png"
    with pytest.raises(manifest.ManifestError) as e:
        manifest.read_manifest(write_manifest_csv(tmp_path, rows))
    assert (2, "path") in _problems(e.value)


def test_images_checked_for_existence_hash_and_size(tmp_path):
    rows = manifest_rows(tmp_path, 3, 1)
    parsed = manifest.read_manifest(write_manifest_csv(tmp_path, rows))
    (tmp_path / rows[0]["path"]).unlink()
    (tmp_path / rows[1]["path"]).write_bytes(b"not the same bytes")
    parsed[2].width = 9
    with pytest.raises(manifest.ManifestError) as e:
        manifest.check_images(parsed, tmp_path)
    assert _problems(e.value) == {(1, "path"), (2, "sha256"), (3, "width")}
    ok = manifest.read_manifest(write_manifest_csv(tmp_path, manifest_rows(tmp_path, 1, 0)))
    ok[0].width = ok[0].height = None
    manifest.check_images(ok, tmp_path)
    assert (ok[0].width, ok[0].height) == (8, 8)  # read with Pillow


def test_settings_errors_name_the_field():
    with pytest.raises(manifest.ManifestError) as e:
        manifest.parse_definition({"exposure_ms": "fast"})
    assert e.value.field == "exposure_ms"
    with pytest.raises(manifest.ManifestError) as e:
        manifest.parse_definition({"task": "guess"})
    assert e.value.field == "task"
    with pytest.raises(manifest.ManifestError) as e:
        manifest.parse_definition({"conditions": {"short": {"staircase": {"step_ms": -1}}}})
    assert e.value.field == "conditions.short.staircase.step_ms"
    with pytest.raises(manifest.ManifestError) as e:
        manifest.parse_definition({"slug": "Bad Slug"})
    assert e.value.field == "slug"
    d = manifest.parse_definition({"task": "clickme", "title": "T", "click_budget": 50, "conditions": ["a", "b"]})
    assert (d.task, d.settings.click_budget, list(d.conditions)) == ("clickme", 50, ["a", "b"])


def test_toml_settings_file(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('task = "realfake"\ntitle = "Toml study"\nexposure_ms = 300\n[conditions.fast]\nexposure_ms = 200\n')
    d = manifest.parse_definition(manifest.load_definition(path))
    assert d.settings.exposure_ms == 300 and d.conditions == {"fast": {"exposure_ms": 200}}


def test_create_study_stores_rows_conditions_and_images(app, tmp_path, stimuli_dir):
    path = stimuli_dir(2, 3, catch=1)
    with app.app_context():
        s = db.session()
        definition = manifest.parse_definition({"title": "Demo", "conditions": {"a": {}, "b": {"exposure_ms": 250}}})
        study = manifest.create_study(s, manifest.read_manifest(path), path.parent, definition, app.config["STIMULI_ROOT"], live=True)
        assert (study.slug, study.status, study.task) == ("demo", "live", "realfake")
        stimuli = s.scalars(select(Stimulus).where(Stimulus.study_id == study.id)).all()
        assert len(stimuli) == 6 and sum(x.role == "catch" for x in stimuli) == 1
        for x in stimuli:
            stored = Path(app.config["STIMULI_ROOT"]) / x.path
            assert x.sha256 in x.path and manifest.sha256_file(stored) == x.sha256
            assert x.width == 8 and x.height == 8
        names = {c.name: c.settings for c in s.scalars(select(Condition).where(Condition.study_id == study.id))}
        assert names == {"a": {}, "b": {"exposure_ms": 250}}
        with pytest.raises(manifest.ManifestError) as e:  # the slug is taken
            manifest.create_study(s, manifest.read_manifest(path), path.parent, definition, app.config["STIMULI_ROOT"])
        assert e.value.field == "slug"


def test_failed_creation_leaves_no_study(app, tmp_path):
    rows = manifest_rows(tmp_path, 2, 2)
    rows[3]["sha256"] = "0" * 64
    path = write_manifest_csv(tmp_path, rows)
    with app.app_context():
        with pytest.raises(manifest.ManifestError) as e:
            manifest.create_study(db.session(), manifest.read_manifest(path), tmp_path,
                                  manifest.parse_definition({}), app.config["STIMULI_ROOT"], slug="x")
        assert str(e.value).count("row 4, column sha256") == 1
        assert db.session().scalar(select(Study)) is None
        assert db.session().scalar(select(Stimulus)) is None


def test_manifest_json_keeps_unknown_columns_out_of_the_way(tmp_path):
    rows = manifest_rows(tmp_path, 1, 1)
    rows[0]["note"] = "from the generator"
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"version": 1, "stimuli": rows}))
    parsed = manifest.read_manifest(path)
    assert parsed[0].extra == {"note": "from the generator"}


def _create(app, path: Path, task: str, slug: str):
    with app.app_context():
        s = db.session()
        study = manifest.create_study(s, manifest.read_manifest(path), path.parent,
                                      manifest.parse_definition({"task": task}), app.config["STIMULI_ROOT"],
                                      slug=slug)
        return {x.class_label: x.class_text for x in s.scalars(select(Stimulus).where(Stimulus.study_id == study.id))}


def test_class_text_is_read_and_stored(app, tmp_path):
    rows = manifest_rows(tmp_path, 2, 2)
    rows[1]["class_text"] = rows[3]["class_text"] = "the digit 1, mirrored left to right"
    for r in rows:
        r["class_label"] = r["class_label"] + "_flip" if r["class_label"] == "digit1" else r["class_label"]
    parsed = manifest.read_manifest(write_manifest_json(tmp_path, rows))
    assert [r.class_text for r in parsed] == ["the digit 0", "the digit 1, mirrored left to right"] * 2
    stored = _create(app, write_manifest_csv(tmp_path, rows), "clickme", "texts")
    assert stored == {"digit0": "the digit 0", "digit1_flip": "the digit 1, mirrored left to right"}
    rows[0]["class_text"] = "x" * 201
    with pytest.raises(manifest.ManifestError) as e:
        manifest.read_manifest(write_manifest_csv(tmp_path, rows))
    assert _problems(e.value) == {(1, "class_text")}


def test_clickme_refuses_class_ids_without_class_text(app, tmp_path):
    """A manifest without the column still makes a real-or-fake study (no class is shown), but a
    ClickMe page must name the class, and `digit1` is an id: every such row is named."""
    rows = manifest_rows(tmp_path, 2, 2)
    rows[2]["class_text"] = ""  # the column exists, this row leaves it empty
    path = write_manifest_csv(tmp_path, rows, columns=[c for c in rows[0] if c != "class_text"])
    assert "class_text" not in path.read_text()
    assert set(_create(app, path, "realfake", "rf").values()) == {None}
    with pytest.raises(manifest.ManifestError) as e:
        _create(app, path, "clickme", "cm")
    assert _problems(e.value) == {(1, "class_text"), (2, "class_text"), (3, "class_text"), (4, "class_text")}
    assert "row 2, column class_text: is needed in a ClickMe study: the class_label 'digit1'" in str(e.value)
    with pytest.raises(manifest.ManifestError) as e:
        _create(app, write_manifest_csv(tmp_path, rows), "clickme", "cm")
    assert _problems(e.value) == {(3, "class_text")}
    with app.app_context():
        assert db.session().scalar(select(Study).where(Study.slug == "cm")) is None


def test_plain_word_labels_need_no_class_text(app, tmp_path):
    rows = manifest_rows(tmp_path, 2, 2)
    labels = ["hot_air_balloon", "The Eiffel Tower", "t-shirt", "unconditional"]
    for r, label in zip(rows, labels, strict=True):
        r["class_label"] = label
    columns = [c for c in rows[0] if c != "class_text"]
    with pytest.raises(manifest.ManifestError) as e:  # an unconditional sample has no class
        _create(app, write_manifest_csv(tmp_path, rows, columns=columns), "clickme", "words")
    assert _problems(e.value) == {(4, "class_text")}
    stored = _create(app, write_manifest_csv(tmp_path, rows[:3], columns=columns), "clickme", "words")
    assert stored == {"hot_air_balloon": "hot air balloon", "The Eiffel Tower": "The Eiffel Tower",
                      "t-shirt": "t-shirt"}
    assert [manifest.words_of_label(x) for x in ("digit4_rot270", "Balinese/character01", "class_07")] == [None] * 3

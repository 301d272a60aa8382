"""Catch trials need catch rows: a study that asks for them from a manifest without any is
refused at creation, naming the setting; the default n_catch of such a manifest is stored as 0."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from study import db, manifest
from study.tables import Study


def _create(app, manifest_path, raw, slug="rf"):
    with app.app_context():
        study = manifest.create_study(
            db.session(), manifest.read_manifest(manifest_path), manifest_path.parent,
            manifest.parse_definition(raw), app.config["STIMULI_ROOT"], slug=slug,
        )
        return study.settings

def test_asking_for_catch_trials_without_catch_rows_is_refused(app, stimuli_dir):
    path = stimuli_dir(2, 2)
    with pytest.raises(manifest.ManifestError) as exc:
        _create(app, path, {"task": "realfake", "n_catch": 4})
    assert exc.value.field == "n_catch"
    assert "n_catch: asks for 4 catch trial(s) per participant, but the manifest has no rows with role catch" in str(exc.value)
    with pytest.raises(manifest.ManifestError) as exc:
        _create(app, path, {"task": "realfake", "n_catch": 0, "conditions": {"a": {}, "b": {"n_catch": 1}}})
    assert exc.value.field == "conditions.b.n_catch"
    with app.app_context():
        assert db.session().scalar(select(Study.id)) is None  # nothing was stored

def test_catch_rows_or_no_request_are_accepted(app, stimuli_dir, tmp_path):
    assert _create(app, stimuli_dir(2, 2, catch=1), {"task": "realfake", "n_catch": 4}, "with-catch")["n_catch"] == 4
    # the default n_catch (no key in the file) cannot be met: the stored settings say 0
    assert _create(app, stimuli_dir(2, 2), {"task": "realfake"}, "default")["n_catch"] == 0
    assert _create(app, stimuli_dir(2, 2), {"task": "realfake", "n_catch": 0}, "zero")["n_catch"] == 0

def test_cli_names_the_setting(app, stimuli_dir, tmp_path):
    settings = tmp_path / "study.toml"
    settings.write_text('task = "realfake"\nn_catch = 4\n')
    result = app.test_cli_runner().invoke(args=["create-study", "--manifest", str(stimuli_dir(2, 2)),
                                                "--settings", str(settings), "--slug", "rf"])
    assert result.exit_code == 2
    assert "n_catch: asks for 4 catch trial(s)" in result.output
    assert "created" not in result.output

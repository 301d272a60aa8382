"""study_env lets the app load the run's feedback checkpoint (study.feedback only loads
checkpoints under FEEDBACK_CLASSIFIER_DIR)."""

from __future__ import annotations

import json
from pathlib import Path

from experiments.server import study_env, write_env


def test_feedback_checkpoint_folder_is_allowed(tmp_path: Path) -> None:
    ckpt = tmp_path / "cache" / "feedback" / "abc" / "feedback.pt"
    env = study_env("sqlite:///x.db", tmp_path / "stimuli", tmp_path / "instance", feedback_checkpoint=ckpt)
    assert env["FEEDBACK_CLASSIFIER_DIR"] == str(ckpt.parent.resolve())
    assert ckpt.resolve().is_relative_to(env["FEEDBACK_CLASSIFIER_DIR"])
    assert json.loads(write_env(env, tmp_path / "site" / "server_env.json").read_text()) == env


def test_no_checkpoint_keeps_the_app_default(tmp_path: Path) -> None:
    env = study_env("sqlite:///x.db", tmp_path / "stimuli", tmp_path / "instance")
    assert "FEEDBACK_CLASSIFIER_DIR" not in env

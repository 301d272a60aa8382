"""Helpers for the study tests: small studies with real PNG stimuli, inserted as ORM rows."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from flask import Flask
from PIL import Image
from sqlalchemy.orm import Session

from study.models import Condition, Stimulus, Study
from study.settings import StudySettings


def build_study(
    app: Flask,
    *,
    task: str = "realfake",
    n_main: int = 6,
    n_practice: int = 1,
    n_catch: int = 1,
    settings: dict[str, Any] | None = None,
    status: str = "live",
    conditions: tuple[str, ...] = ("A", "B"),
    code: str = "C0DE42",
    image_size: int = 8,
    class_texts: bool = True,
) -> str:
    """A study with random grey PNG stimuli; `class_texts=False` stores none (a study created
    before class texts existed)."""
    slug = f"{task}-{uuid.uuid4().hex[:8]}"
    root = Path(app.config["STIMULI_ROOT"]) / slug
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(slug))
    base = {
        "trials_per_participant": n_main,
        "n_practice": n_practice,
        "n_catch": n_catch,
        "exposure_ms": 50,
        "fixation_ms": 50,
        "mask_ms": 50,
        "min_clicks": 2,
        "click_budget": 40,
    }
    base.update(settings or {})
    StudySettings.from_dict(base)  # fail early on a bad test setting
    engine = app.extensions["sqlalchemy_engine"]
    with Session(engine) as s:
        study = Study(slug=slug, title=f"Test {task}", task=task, status=status,
                      settings=base, completion_code=code)
        s.add(study)
        s.flush()
        for name in conditions:
            s.add(Condition(study_id=study.id, name=name))
        roles = ["main"] * n_main + ["practice"] * n_practice + ["catch"] * n_catch
        for i, role in enumerate(roles):
            pixels = (rng.random((image_size, image_size)) * 255).astype(np.uint8)
            rel = f"{slug}/s{i}.png"
            Image.fromarray(pixels, mode="L").save(root / f"s{i}.png")
            digest = hashlib.sha256((root / f"s{i}.png").read_bytes()).hexdigest()
            s.add(Stimulus(study_id=study.id, stimulus_key=f"s{i}", path=rel, sha256=digest,
                           source="model" if i % 2 else "real",
                           model_name="cfgdm" if i % 2 else None, class_label=f"digit{i % 3}",
                           class_text=f"the digit {i % 3}" if class_texts else None,
                           width=image_size, height=image_size, role=role))
        s.commit()
    return slug

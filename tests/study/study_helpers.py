"""Helpers for the study tests: small studies with real PNG stimuli, inserted as ORM rows."""

from __future__ import annotations

import csv
import hashlib
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from flask import Flask
from PIL import Image
from sqlalchemy.orm import Session

from study.settings import StudySettings
from study.tables import Condition, Stimulus, Study


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


def digit_manifest(folder: Path, classes: tuple[str, ...] = ("digit4_rot270", "digit7_flip"),
                   per_class: int = 3, practice: int = 1, catch: int = 0) -> Path:
    """A manifest.csv as `python -m models sample` writes it (docs/formats.md section 1) over the
    embedded digits at 16 px: per class, `per_class` real drawings (ids `real-digits-...`) and
    `per_class` stand-ins for model samples (another drawing of the class shifted by a pixel,
    ids `cfgdm-w1.0-c...`), with the sampler's file names, exemplar ids and class texts. The
    first `practice` rows are practice, the next `catch` rows catch trials. Needs torch."""
    from models.data.class_text import class_text
    from models.data.digits import load_digits
    from models.data.preprocess import tensor_to_png_array
    from models.sample import COLUMNS, safe_name

    data = load_digits(16, augment=("id", "rot90", "rot270", "flip"), max_per_class=2 * per_class + 1)
    rows = []
    for ci, cls in enumerate(classes):
        idx = data.indices_of_class(data.class_names.index(cls))
        exemplar = data.ids[idx[0]]
        for j in range(per_class):
            for source in ("real", "model"):
                k = idx[1 + j] if source == "real" else idx[1 + per_class + j]
                image = data.images[k] if source == "real" else data.images[k].roll(1, dims=-1)
                sid = f"real-{safe_name(data.ids[k])}" if source == "real" else f"cfgdm-w1.0-c{ci:03d}-e0-s{j}"
                rel = f"images/{sid}.png"
                (folder / "images").mkdir(parents=True, exist_ok=True)
                Image.fromarray(tensor_to_png_array(image)).save(folder / rel)
                model = source == "model"
                rows.append({
                    "stimulus_id": sid, "path": rel,
                    "sha256": hashlib.sha256((folder / rel).read_bytes()).hexdigest(),
                    "source": source, "model": "cfgdm" if model else "", "class_label": cls,
                    "class_text": class_text("digits", cls), "exemplar_id": exemplar if model else "",
                    "guidance": 1.0 if model else "", "sampler": "ddim" if model else "",
                    "steps": 20 if model else "", "seed": 1000 + j if model else "",
                    "checkpoint": "data/runs/cache/diffusion/cfgdm-d7fb559d5724/checkpoint.pt" if model else "",
                    "dataset": "digits", "split": "heldout", "role": "main", "width": 16, "height": 16,
                })
    for i, row in enumerate(rows[: practice + catch]):
        row["role"] = "practice" if i < practice else "catch"
    path = folder / "manifest.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def manifest_study(app: Flask, manifest: Path, definition: dict[str, Any], slug: str) -> str:
    """A live study created from `manifest` through study.manifest, as the CLI does."""
    from study import manifest as manifests

    with Session(app.extensions["sqlalchemy_engine"]) as s:
        manifests.create_study(s, manifests.read_manifest(manifest), manifest.parent,
                               manifests.parse_definition(definition), app.config["STIMULI_ROOT"],
                               slug=slug, live=True)
    return slug

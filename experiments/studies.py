"""Build the two studies of a run (or the demo) from a stimulus manifest, through the study
package's public functions: database upgrade, researcher account, create_study, export.

The ClickMe study shows real held-out drawings and CFGDM samples; the real-or-fake study shows
real drawings and the samples of every model. Stimuli are chosen with a seeded RNG so that each
ClickMe image gets several participants (the analysis needs >= 2 per image)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from study import create_app, db, migrate
from study.auth import AccountError, create_researcher
from study.export import export_study
from study.manifest import ManifestRow, create_study, parse_definition, read_manifest
from study.tables import Researcher, Study


@dataclass(frozen=True)
class StudyPlan:
    """One study to create: its slug, its definition (settings file content) and its rows."""

    slug: str
    definition: dict[str, Any]
    rows: list[ManifestRow]


def _pick(rows: list[ManifestRow], n: int, rng: np.random.Generator) -> list[ManifestRow]:
    if n >= len(rows):
        return list(rows)
    return [rows[i] for i in sorted(rng.choice(len(rows), n, replace=False))]


def choose_clickme(rows: list[ManifestRow], n_images: int, seed: int) -> list[ManifestRow]:
    """Half real held-out drawings, half CFGDM samples at the largest guidance scale (or any
    model sample when there is no CFGDM), at most `n_images` in all."""
    rng = np.random.default_rng(seed)
    real = [r for r in rows if r.source == "real"]
    model = [r for r in rows if r.source == "model"]
    cfg = [r for r in model if r.model == "cfgdm"]
    if cfg:
        top = max(r.guidance or 0.0 for r in cfg)
        model = [r for r in cfg if (r.guidance or 0.0) == top]
    half = n_images // 2
    return _pick(real, half, rng) + _pick(model, n_images - half, rng)


def choose_realfake(rows: list[ManifestRow], n_images: int, seed: int) -> list[ManifestRow]:
    """Half real drawings, half model samples spread evenly over models (and their guidance)."""
    rng = np.random.default_rng(seed + 1)
    real = [r for r in rows if r.source == "real"]
    models = sorted({r.model for r in rows if r.source == "model"})
    half = n_images // 2
    fakes: list[ManifestRow] = []
    for i, m in enumerate(models):
        share = (n_images - half) // len(models) + (1 if i < (n_images - half) % len(models) else 0)
        fakes += _pick([r for r in rows if r.model == m], share, rng)
    return _pick(real, half, rng) + fakes


def study_plans(manifest: Path, trials: int, n_clickme_images: int, n_realfake_images: int,
                seed: int, prefix: str, feedback_classifier: Path | None = None) -> list[StudyPlan]:
    """The ClickMe and the real-or-fake study of a run (slugs `PREFIX-clickme`, `PREFIX-realfake`)."""
    rows = read_manifest(manifest)
    clickme = {
        "task": "clickme", "title": "Which parts of the drawing matter? (ClickMe)",
        "trials_per_participant": trials, "n_practice": 1, "n_catch": 0,
        "min_clicks": 5, "click_budget": 60, "bubble_radius": 0.08,
        "instructions_text": "Paint over the parts of the drawing that tell you what it is.",
    }
    if feedback_classifier is not None:
        clickme["feedback_classifier"] = str(feedback_classifier)
    realfake = {
        "task": "realfake", "title": "Real drawing or AI-generated?",
        "trials_per_participant": trials, "n_practice": 2, "n_catch": 0,
        "exposure_ms": 1000.0, "confidence": {"enabled": True, "min": 1, "max": 4},
        "instructions_text": "Was this drawing made by a person (F) or by an AI model (J)?",
    }
    return [
        StudyPlan(f"{prefix}-clickme", clickme, choose_clickme(rows, n_clickme_images, seed)),
        StudyPlan(f"{prefix}-realfake", realfake, choose_realfake(rows, n_realfake_images, seed)),
    ]


class StudySite:
    """One database + stimulus store + instance folder, driven in-process through an app."""

    def __init__(self, env: dict[str, str]) -> None:
        from experiments.server import app_environment

        self.env = env
        with app_environment(env):
            self.app = create_app({"DATABASE_URL": env["DATABASE_URL"], "STIMULI_ROOT": env["STIMULI_ROOT"]})
        migrate.upgrade(env["DATABASE_URL"])

    def ensure_study(self, plan: StudyPlan, base_dir: Path) -> tuple[Study, bool]:
        """The study `plan.slug`, created live from its rows when it does not exist yet;
        returns (study, created)."""
        with self.app.app_context():
            s = db.session()
            existing = s.scalar(select(Study).where(Study.slug == plan.slug))
            if existing is not None:
                return existing, False
            study = create_study(s, plan.rows, base_dir, parse_definition(plan.definition),
                                 self.env["STIMULI_ROOT"], slug=plan.slug, live=True)
            return study, True

    def ensure_researcher(self, email: str, password: str | None = None) -> tuple[str, str | None]:
        """Create the researcher when missing (with `password`, or a new random one); returns
        (email, the password when it was created now, else None)."""
        with self.app.app_context():
            s = db.session()
            if s.scalar(select(Researcher.id).where(Researcher.email == email)) is not None:
                return email, None
            password = password or secrets.token_urlsafe(12)
            try:
                create_researcher(s, email, password)
                s.commit()
            except AccountError:
                s.rollback()
                raise
            return email, password

    def truth(self, slug: str) -> dict:
        from study.simulated_participants import truth_from_db

        with self.app.app_context():
            s = db.session()
            study = s.scalar(select(Study).where(Study.slug == slug))
            return truth_from_db(s, study.id, self.env["STIMULI_ROOT"])

    def export(self, slug: str, out_dir: Path) -> dict[str, int]:
        with self.app.app_context():
            return export_study(db.session(), slug, out_dir, fmt="csv",
                                secret_key=self.app.config["SECRET_KEY"], pseudonymise=True)

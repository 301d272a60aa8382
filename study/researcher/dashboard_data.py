"""What the study page's charts show, read from the database: participant counts per minute
(aggregate SQL), the study's export tables (the SQL of the export views, typed and checked by
`analysis.load` as for any export) and the stimulus gallery.

`analysis` stays free of Flask and the ORM: this module reads the export's documented columns
and hands plain DataFrames to `analysis`'s pure functions, as `analysis.load.load_database`
does with the views of a study database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from analysis.judgments import judgment_trials, sdt_table
from analysis.load import COLUMNS, check_export, tidy
from analysis.maps import image_maps
from study.export_views import clicks_view, trials_view
from study.tables import Participant, Stimulus, Study, Trial

# (series, time column, participant statuses counted); returned participants have no time of
# their own: their last request (last_seen_at) is when they stopped, as it is for a completed
# participant stored without completed_at.
TIMELINE_SERIES = (
    ("started", Participant.started_at, None),
    ("completed", func.coalesce(Participant.completed_at, Participant.last_seen_at),
     ("completed",)),
    ("returned", Participant.last_seen_at, ("returned",)),
)
JUDGMENT_GROUPS = ["model", "guidance"]
N_BOOT = 500  # bootstrap resamples for the dashboard's CIs (the report uses more)


def _minute(column: ColumnElement, dialect: str) -> ColumnElement:
    """`column` (a UTC timestamp) as text 'YYYY-MM-DD HH:MM', truncated to the minute."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24:MI")
    return func.strftime("%Y-%m-%d %H:%M", column)


def timeline_counts(db: Session, study_id: int) -> dict[str, list[tuple[dt.datetime, int]]]:
    """{series: [(minute (UTC), participants that minute)]} in time order, one GROUP BY per
    series: started (every participant, at started_at), completed (at completed_at), returned
    (at their last request). Minutes without anyone are left out."""
    dialect = db.get_bind().dialect.name
    out: dict[str, list[tuple[dt.datetime, int]]] = {}
    for name, column, statuses in TIMELINE_SERIES:
        minute = _minute(column, dialect).label("minute")
        query = (select(minute, func.count()).where(Participant.study_id == study_id,
                                                    column.is_not(None))
                 .group_by(minute).order_by(minute))
        if statuses is not None:
            query = query.where(Participant.status.in_(statuses))
        out[name] = [(dt.datetime.strptime(m, "%Y-%m-%d %H:%M").replace(tzinfo=dt.UTC), int(n))
                     for m, n in db.execute(query)]
    return out


def _read(db: Session, query, name: str, origin: str) -> pd.DataFrame:
    raw = pd.read_sql_query(query, db.connection())
    return tidy(raw, name, origin)


def export_tables(db: Session, study: Study, stimulus: Stimulus | None = None
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The study's trials and clicks with the export's columns (docs/formats.md §3), checked by
    `analysis.load.check_export`; only those of `stimulus` when given. Raises
    analysis.load.AnalysisInputError when the stored answers break the export's rules."""
    trials_q = trials_view().where(Study.id == study.id)
    clicks_q = clicks_view().where(Study.id == study.id)
    if stimulus is not None:
        trials_q = trials_q.where(Trial.stimulus_id == stimulus.id)
        clicks_q = clicks_q.where(Trial.stimulus_id == stimulus.id)
    origin = f"study {study.slug}"
    trials = _read(db, trials_q, "trials", origin)
    clicks = _read(db, clicks_q, "clicks", origin)
    events = tidy(pd.DataFrame({c: [] for c in COLUMNS["events"]}), "events")
    trials, clicks, _, _ = check_export(trials, clicks, events, origin)
    return trials, clicks


def judgment_table(trials: pd.DataFrame, n_boot: int = N_BOOT) -> pd.DataFrame:
    """Accuracy and d' (fake = signal) with 95% bootstrap CIs (participants resampled) per
    model and guidance, from `analysis.judgments.sdt_table`; no rows before the first answer
    to a fake."""
    judged = judgment_trials(trials)
    if judged.empty:
        return pd.DataFrame()
    return sdt_table(judged, by=JUDGMENT_GROUPS, n_boot=n_boot)


@dataclass
class HeatMap:
    """One stimulus's image (H, W) grey in [0, 1] and its mean click map (None before the
    first click), with the number of trials that painted it."""

    image: np.ndarray
    heat: np.ndarray | None
    n_trials: int


def stimulus_pixels(path: Path) -> np.ndarray:
    """The stimulus PNG as an (H, W) float array in [0, 1]."""
    with Image.open(path) as img:
        return np.asarray(img.convert("L"), dtype=np.float64) / 255.0


def heat_map(trials: pd.DataFrame, clicks: pd.DataFrame, image: np.ndarray) -> HeatMap:
    """The click map of one stimulus at the image's size: `analysis.maps.image_maps` (mean over
    trials of binary click maps, blurred the ClickMe way) over its trials and clicks."""
    if clicks.empty:
        return HeatMap(image, None, 0)
    maps = image_maps(trials, clicks, image.shape)
    if not len(maps.stimulus_ids):
        return HeatMap(image, None, 0)
    return HeatMap(image, maps.maps[0], int(maps.n_subjects[0]))


@dataclass
class GalleryItem:
    """One stimulus with what the researcher needs to recognise it."""

    id: int
    key: str
    real: bool
    model: str
    guidance: float | None
    class_label: str
    class_text: str
    role: str
    sampler: str
    steps: int | None
    seed: int | None
    size: str


def gallery(db: Session, study_id: int) -> list[GalleryItem]:
    """The study's stimuli in manifest order, with their metadata."""
    rows = db.scalars(select(Stimulus).where(Stimulus.study_id == study_id)
                      .order_by(Stimulus.id)).all()
    out = []
    for s in rows:
        gen = s.generation or {}
        out.append(GalleryItem(
            id=s.id, key=s.stimulus_key, real=s.source == "real", model=s.model_name or "",
            guidance=gen.get("guidance"), class_label=s.class_label,
            class_text=s.class_text or "", role=s.role, sampler=gen.get("sampler") or "",
            steps=gen.get("steps"), seed=gen.get("seed"),
            size=f"{s.width}x{s.height}" if s.width and s.height else "",
        ))
    return out

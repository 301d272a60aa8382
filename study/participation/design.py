"""Design versions: a study's design (its settings and its stimulus set) named by a stable hash.

Each participant records the hash of the design it started under (participants.design_hash,
shown in the export), and the `design_versions` table keeps each version's settings, so that
editing a live study's settings makes a new version and never changes what earlier participants
are served. `design_hash` is a pure function; `record_version` stores a study's current version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from study.settings import StudySettings
from study.tables import DesignVersion, Participant, Stimulus, Study, utcnow


def canonical_json(value: Any) -> str:
    """One text per JSON value: keys sorted, no spaces, no NaN (refused)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def design_stimuli(stimuli: Iterable[Iterable[str]]) -> list[list[str]]:
    """The stimulus set as sorted [stimulus_id, sha256, role] lists (order of upload ignored)."""
    return sorted([str(key), str(sha), str(role)] for key, sha, role in stimuli)


def design_hash(settings: dict[str, Any], stimuli: Iterable[Iterable[str]]) -> str:
    """SHA-256 (hex) of the canonical JSON of `settings` and the sorted stimulus set: the same
    for the same design whatever the key or stimulus order, different when a setting, a
    stimulus file or a stimulus role differs."""
    payload = {"settings": settings, "stimuli": design_stimuli(stimuli)}
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def current_design(s: Session, study: Study) -> tuple[str, dict[str, Any], list[list[str]]]:
    """The study's design now: (hash, complete validated settings, stimulus set)."""
    settings = StudySettings.from_dict(study.settings).to_dict()
    rows = s.execute(
        select(Stimulus.stimulus_key, Stimulus.sha256, Stimulus.role)
        .where(Stimulus.study_id == study.id)
    ).all()
    stimuli = design_stimuli(rows)
    return design_hash(settings, stimuli), settings, stimuli


def record_version(s: Session, study: Study) -> str:
    """Store the study's current design version (once per hash) in the session's transaction
    and give its hash. A version that exists already is left as it is: rows are never
    changed, so earlier participants keep their settings."""
    digest, settings, stimuli = current_design(s, study)
    values = {"hash": digest, "settings": settings, "stimuli": stimuli, "created_at": utcnow()}
    dialect = s.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    s.execute(insert(DesignVersion).values(**values).on_conflict_do_nothing(
        index_elements=["hash"]))
    return digest


# Version rows never change and a hash names its content (settings and stimuli), so a
# version's settings are kept per process: an answer reads no design_versions row. Bounded.
_KEPT: dict[str, dict[str, Any]] = {}
_KEPT_MAX = 1024


def version_settings(s: Session, digest: str | None) -> dict[str, Any] | None:
    """The stored settings of design version `digest` (None: no version recorded). The dict
    is shared between requests: read it, never change it."""
    if digest is None:
        return None
    kept = _KEPT.get(digest)
    if kept is not None:
        return kept
    version = s.get(DesignVersion, digest)
    if version is None:
        return None
    if len(_KEPT) >= _KEPT_MAX:
        _KEPT.clear()
    _KEPT[digest] = version.settings
    return version.settings


def versions_of(s: Session, study_id: int) -> list[tuple[str, int]]:
    """The design versions the study's participants started under, oldest first, each with
    its number of participants."""
    rows = s.execute(
        select(Participant.design_hash, func.count(), func.min(Participant.started_at))
        .where(Participant.study_id == study_id, Participant.design_hash.is_not(None))
        .group_by(Participant.design_hash)
        .order_by(func.min(Participant.started_at))
    ).all()
    return [(digest, n) for digest, n, _ in rows]


def study_versions(s: Session, study_id: int) -> dict[str, dict[str, Any]]:
    """The design versions the study's participants started under, oldest first: hash ->
    {"participants": how many, "settings": the version's settings} (the data dictionary's)."""
    counts = versions_of(s, study_id)
    stored = dict(s.execute(select(DesignVersion.hash, DesignVersion.settings)
                            .where(DesignVersion.hash.in_([h for h, _ in counts]))).all())
    return {h: {"participants": n, "settings": stored[h]} for h, n in counts if h in stored}

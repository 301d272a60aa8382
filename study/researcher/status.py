"""A study's life cycle: draft -> live <-> paused -> closed (closed is final)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from study.tables import Study

TARGETS = ("live", "paused", "closed")
_ALLOWED = {
    "draft": {"live", "closed"},
    "live": {"paused", "closed"},
    "paused": {"live", "closed"},
    "closed": set(),
}


class StatusError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def set_status(db: Session, study: Study, target: str) -> Study:
    """Move `study` to `target` and commit; StatusError names the field when not allowed."""
    if target not in TARGETS:
        raise StatusError("status", f"must be one of {', '.join(TARGETS)} (got {target!r})")
    if target == study.status:
        return study
    if target not in _ALLOWED.get(study.status, set()):
        raise StatusError("status", f"a {study.status} study cannot become {target}")
    study.status = target
    db.commit()
    return study

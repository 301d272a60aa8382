"""Data protection: delete one participant's data on request (GDPR art. 17).

A participant asks through Prolific or MTurk (the researcher knows their PROLIFIC_PID or workerId)
or quotes the pseudonym from an export. `find_participant` locates the row by any of these (the
pseudonym is recomputed with the deployment's SECRET_KEY, as study/export.py makes it), and
`delete_participant` removes the participant with their trials, responses, clicks and browser
events in one transaction; the study, its stimuli and everyone else's data stay.

CLI: `python -m study delete-participant SLUG (--external-id ID | --pseudonym P | --participant-id UUID) --yes`
"""

from __future__ import annotations

from dataclasses import dataclass

import click
from flask.cli import with_appcontext
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from study.cli_errors import InputError
from study.export import pseudonym as make_pseudonym
from study.tables import BrowserEvent, Click, Participant, Response, Study, Trial


class PrivacyError(ValueError):
    """A deletion request that cannot be carried out; `field` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Deleted:
    participant_public_id: str
    trials: int
    responses: int
    clicks: int
    events: int

    def summary(self) -> str:
        return (f"deleted participant {self.participant_public_id}: {self.trials} trials, "
                f"{self.responses} responses, {self.clicks} clicks, {self.events} events")


def find_participant(db: Session, slug: str, *, external_id: str | None = None, pseudonym: str | None = None,
                     participant_id: str | None = None, secret_key: str | None = None) -> Participant:
    """The participant of study `slug` named by exactly one of: the platform's external id, the
    export's pseudonym (needs `secret_key`), or the public participant id (UUID)."""
    given = [k for k, v in (("external_id", external_id), ("pseudonym", pseudonym),
                            ("participant_id", participant_id)) if v]
    if len(given) != 1:
        raise PrivacyError("participant", "give exactly one of external_id, pseudonym, participant_id")
    study_id = db.scalar(select(Study.id).where(Study.slug == slug))
    if study_id is None:
        raise PrivacyError("slug", f"no study called {slug!r}")
    in_study = select(Participant).where(Participant.study_id == study_id)
    if external_id:
        found = db.scalars(in_study.where(Participant.external_id == external_id)).all()
    elif participant_id:
        found = db.scalars(in_study.where(Participant.public_id == participant_id)).all()
    else:
        if not secret_key:
            raise PrivacyError("secret_key", "needed to recompute pseudonyms")
        found = []
        rows = db.execute(select(Participant.id, Participant.external_id, Participant.public_id)
                          .where(Participant.study_id == study_id))
        ids = [pid for pid, ext, pub in rows if make_pseudonym(ext or pub, secret_key) == pseudonym]
        found = db.scalars(select(Participant).where(Participant.id.in_(ids))).all() if ids else []
    if not found:
        raise PrivacyError(given[0], f"no participant of study {slug!r} matches")
    if len(found) > 1:  # the same external id on two platforms: ask for the public id instead
        raise PrivacyError(given[0], f"{len(found)} participants match; name one by participant_id")
    return found[0]


def delete_participant(db: Session, participant: Participant) -> Deleted:
    """Delete the participant and every row that belongs to them, in one transaction (explicit
    deletes in dependency order, so it does not rely on ON DELETE CASCADE being enforced)."""
    pid = participant.id
    public_id = participant.public_id
    response_ids = select(Response.id).where(Response.participant_id == pid)
    try:
        counts = {
            "clicks": db.scalar(select(func.count()).select_from(Click).where(Click.response_id.in_(response_ids))),
            "responses": db.scalar(select(func.count()).select_from(Response).where(Response.participant_id == pid)),
            "events": db.scalar(select(func.count()).select_from(BrowserEvent).where(BrowserEvent.participant_id == pid)),
            "trials": db.scalar(select(func.count()).select_from(Trial).where(Trial.participant_id == pid)),
        }
        db.execute(delete(Click).where(Click.response_id.in_(response_ids)))
        db.execute(delete(Response).where(Response.participant_id == pid))
        db.execute(delete(BrowserEvent).where(BrowserEvent.participant_id == pid))
        db.execute(delete(Trial).where(Trial.participant_id == pid))
        db.execute(delete(Participant).where(Participant.id == pid))
        db.commit()
    except BaseException:
        db.rollback()
        raise
    db.expunge_all()
    return Deleted(public_id, **counts)


@click.command("delete-participant")
@click.argument("slug")
@click.option("--external-id", help="PROLIFIC_PID or MTurk workerId")
@click.option("--pseudonym", help="the participant column of a pseudonymised export")
@click.option("--participant-id", help="the public participant id (UUID)")
@click.option("--yes", is_flag=True, help="delete without asking")
@with_appcontext
def delete_participant_cmd(slug: str, external_id: str | None, pseudonym: str | None,
                           participant_id: str | None, yes: bool) -> None:
    """Delete one participant's data (trials, responses, clicks, events) on request."""
    from flask import current_app

    from study import db

    s = db.session()
    try:
        p = find_participant(s, slug, external_id=external_id, pseudonym=pseudonym,
                             participant_id=participant_id, secret_key=current_app.config["SECRET_KEY"])
    except PrivacyError as exc:
        flag = {"external_id": "--external-id", "pseudonym": "--pseudonym", "participant_id": "--participant-id",
                "slug": "SLUG"}.get(exc.field, exc.field)
        raise InputError(f"{flag}: {exc.message}") from None
    if not yes:
        click.confirm(f"Delete participant {p.public_id} of {slug} and all their data?", abort=True)
    click.echo(delete_participant(s, p).summary())

"""`python -m study prolific ...`: the Prolific commands.

  check [SLUG] --study ID     verify the token, read the study, list its completion codes and
                              compare them with study SLUG's; changes nothing
  link SLUG --study ID        link a study to its Prolific study (read first, so the id is real)
  reconcile SLUG              Prolific's submissions against the stored data (exit 1 if flagged)
  approve SLUG                approve submissions awaiting review whose data is complete
  bonus SLUG [--file CSV --reason R] [--release KEY ...]   pay bonuses through the ledger

The token is PROLIFIC_API_TOKEN; PROLIFIC_API_URL changes the API's base URL. A failed call ends
with one line naming what failed and exit code 2, never a traceback.
"""

from __future__ import annotations

import functools
from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from study import db
from study.cli_errors import InputError
from study.platforms import bonuses, prolific_records
from study.platforms.prolific import ProlificClient, ProlificError


def _prolific_errors(fn):
    """ProlificError and BonusError become one line and exit code 2."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ProlificError, bonuses.BonusError) as exc:
            raise InputError(str(exc)) from None

    return wrapped


def _study(slug: str):
    from study.tables import Study

    study = db.session().scalar(select(Study).where(Study.slug == slug))
    if study is None:
        raise InputError(f"SLUG: no study called {slug!r}")
    return study


@click.group("prolific")
def prolific_group() -> None:
    """Prolific: check a study, reconcile submissions, approve, pay bonuses (PROLIFIC_API_TOKEN)."""


@prolific_group.command("check")
@click.argument("slug", required=False)
@click.option("--study", "prolific_id", help="the Prolific study id (default: SLUG's linked one)")
@with_appcontext
@_prolific_errors
def check_cmd(slug: str | None, prolific_id: str | None) -> None:
    """Dry check against the API: changes nothing at Prolific or here."""
    study = _study(slug) if slug else None
    if prolific_id is None:
        if study is None:
            raise InputError("--study: give the Prolific study id (or a SLUG linked to one)")
        prolific_id = prolific_records.require_link(db.session(), study)
    with ProlificClient.from_env() as client:
        result = prolific_records.dry_check(client, prolific_id, study)
    p = result.study
    click.echo(f"token accepted; Prolific study {p.id}: {p.name!r}, {p.status}")
    for c in p.completion_codes:
        actions = ", ".join(c.actions) or "no actions"
        click.echo(f"  code {c.code}: {c.code_type} ({actions})")
    if study is None:
        return
    for line in result.codes:
        mark = "ok" if line.problem is None else "PROBLEM"
        click.echo(f"  {study.slug} {line.ending}: {line.code or '-'} ({line.code_type}) {mark}"
                   + (f": {line.problem}" if line.problem else ""))
    problems = sum(line.problem is not None for line in result.codes)
    click.echo(f"{problems} problem(s) with the completion codes")
    if problems:
        raise SystemExit(1)


@prolific_group.command("link")
@click.argument("slug")
@click.option("--study", "prolific_id", required=True, help="the Prolific study id")
@with_appcontext
@_prolific_errors
def link_cmd(slug: str, prolific_id: str) -> None:
    """Link study SLUG to its Prolific study (after reading it, so that the id is real)."""
    study = _study(slug)
    with ProlificClient.from_env() as client:
        found = client.study(prolific_id)
    prolific_records.link(db.session(), study, found.id)
    click.echo(f"study {slug} is linked to Prolific study {found.id} ({found.name!r})")


@prolific_group.command("reconcile")
@click.argument("slug")
@with_appcontext
@_prolific_errors
def reconcile_cmd(slug: str) -> None:
    """List every participant of either side; exit 1 when any is flagged."""
    study = _study(slug)
    with ProlificClient.from_env() as client:
        rec = prolific_records.reconciliation(db.session(), study, client)
    for r in rec.rows:
        click.echo(f"{r.prolific_pid}\t{r.prolific_status or '-'}\t{r.stored_status or '-'}\t"
                   f"{r.responses}/{r.n_trials}\t{r.problem or 'ok'}")
    click.echo(f"{len(rec.rows)} participant(s), {len(rec.flagged)} flagged, "
               f"{len(rec.approvable)} approvable")
    if rec.flagged:
        raise SystemExit(1)


@prolific_group.command("approve")
@click.argument("slug")
@with_appcontext
@_prolific_errors
def approve_cmd(slug: str) -> None:
    """Approve every submission awaiting review whose participant completed with all data."""
    study = _study(slug)
    with ProlificClient.from_env() as client:
        result = prolific_records.approve_complete(db.session(), study, client)
    click.echo(f"approved {len(result.approved)} submission(s)")
    if result.error:
        raise InputError(f"stopped: {result.error}")


@prolific_group.command("bonus")
@click.argument("slug")
@click.option("--file", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              help="CSV lines submission_id,amount (study currency, e.g. 1.50) to add to the ledger")
@click.option("--reason", default="bonus", show_default=True,
              help="names the bonus: the same reason and submission is paid once")
@click.option("--release", "release_keys", multiple=True, metavar="KEY",
              help="a sent bonus that Prolific shows as unpaid: pay it on this run")
@with_appcontext
@_prolific_errors
def bonus_cmd(slug: str, csv_path: Path | None, reason: str, release_keys: tuple[str, ...]) -> None:
    """Record bonuses in the ledger and pay every one not yet paid (safe to rerun)."""
    study = _study(slug)
    s = db.session()
    if csv_path is not None:
        try:
            text = csv_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"--file: cannot read {csv_path}: {exc.strerror}") from None
        added = bonuses.record_intended(s, study.id, reason, bonuses.parse_bonus_csv(text))
        click.echo(f"{added} new bonus(es) in the ledger")
    if release_keys:
        click.echo(f"released {bonuses.release(s, study.id, list(release_keys))} bonus(es)")
    prolific_id = prolific_records.require_link(s, study)
    with ProlificClient.from_env() as client:
        run = bonuses.pay_outstanding(s, study.id, prolific_id, client)
    click.echo(f"paid {len(run.paid)}, confirmed {len(run.confirmed)} sent earlier, "
               f"{len(run.unconfirmed)} sent but not confirmed"
               + (f" ({', '.join(run.unconfirmed)}: check them on Prolific; --release KEY pays one "
                  "that was not paid)" if run.unconfirmed else ""))

"""Researcher pages for Prolific (behind the login): link a study to its Prolific study, the
reconciliation of Prolific's submissions with the stored data, and approving the complete ones.
The work is in study/platforms; these views only read the form and render."""

from __future__ import annotations

import os

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import StringField
from wtforms.validators import DataRequired, Regexp

from study import auth, db
from study.platforms import prolific_records
from study.platforms.prolific import DEFAULT_URL, TOKEN_ENV, URL_ENV, ProlificClient, ProlificError
from study.tables import Study

bp = Blueprint("prolific", __name__, template_folder="templates")


class LinkForm(FlaskForm):
    prolific_study_id = StringField("Prolific study id", validators=[
        DataRequired(), Regexp(r"^[A-Za-z0-9_-]{1,64}$", message="letters, digits, - and _")])


class ApproveForm(FlaskForm):
    pass


def client() -> ProlificClient:
    """The Prolific client of this deployment: the app's config, else the environment."""
    cfg = current_app.config
    return ProlificClient(cfg.get(TOKEN_ENV) or os.environ.get(TOKEN_ENV, ""),
                          cfg.get(URL_ENV) or os.environ.get(URL_ENV) or DEFAULT_URL)


def _study_or_404(slug: str) -> Study:
    study = db.session().scalar(select(Study).where(Study.slug == slug))
    if study is None:
        abort(404)
    return study


@bp.get("/studies/<slug>/prolific")
@auth.login_required
def reconciliation(slug: str):
    study = _study_or_404(slug)
    linked = prolific_records.linked_study_id(db.session(), study.id)
    rec, error = None, None
    if linked is not None:
        try:
            with client() as c:
                rec = prolific_records.reconciliation(db.session(), study, c)
        except ProlificError as exc:
            error = str(exc)
    page = render_template("researcher/prolific.html", study=study, linked=linked, rec=rec,
                           error=error, link_form=LinkForm(), approve_form=ApproveForm())
    return page, 502 if error else 200


@bp.post("/studies/<slug>/prolific/link")
@auth.login_required
def link(slug: str):
    study = _study_or_404(slug)
    form = LinkForm()
    if not form.validate_on_submit():
        for field, messages in form.errors.items():
            flash(f"{field}: {'; '.join(messages)}")
        return redirect(url_for("prolific.reconciliation", slug=slug), code=303)
    prolific_records.link(db.session(), study, form.prolific_study_id.data)
    flash(f"Study {slug} is linked to Prolific study {form.prolific_study_id.data}.")
    return redirect(url_for("prolific.reconciliation", slug=slug), code=303)


@bp.post("/studies/<slug>/prolific/approve")
@auth.login_required
def approve(slug: str):
    study = _study_or_404(slug)
    if not ApproveForm().validate_on_submit():
        flash("The form has expired; nothing was approved. Reload the page and try again.")
    else:
        try:
            with client() as c:
                result = prolific_records.approve_complete(db.session(), study, c)
        except ProlificError as exc:
            flash(f"Nothing approved: {exc}")
        else:
            flash(f"Approved {len(result.approved)} submission(s)."
                  + (f" Stopped: {result.error}" if result.error else ""))
    return redirect(url_for("prolific.reconciliation", slug=slug), code=303)

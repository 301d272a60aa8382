"""Researcher pages: log in, the studies with live progress and charts, create, status, preview,
export."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    stream_with_context,
    url_for,
)
from sqlalchemy import select
from werkzeug.utils import secure_filename
from wtforms.fields.choices import SelectChoice

from analysis.load import AnalysisInputError
from study import auth, db, export, manifest, progress
from study.api.images import stimulus_file
from study.participation import design
from study.researcher import builder, charts, dashboard_data
from study.researcher.forms import (
    DuplicateForm,
    EditSettingsForm,
    LoginForm,
    LogoutForm,
    NewStudyForm,
    StatusForm,
)
from study.researcher.settings_form import PREFIX as SETTINGS_PREFIX
from study.researcher.settings_form import field_values
from study.researcher.status import StatusError, set_status
from study.researcher.upload import resolve_image_dir, unpack_bundle
from study.tables import Stimulus, Study
from study.validation import MAX_ID

bp = Blueprint(
    "researcher", __name__, template_folder="templates", static_folder="static",
    static_url_path="/static",
)


def _study_or_404(slug: str) -> Study:
    study = db.session().scalar(select(Study).where(Study.slug == slug))
    if study is None:
        abort(404)
    return study


def preview_url(slug: str) -> str:
    """The participant side's landing page in preview mode (a logged-in researcher runs the
    whole flow and nothing is stored)."""
    return url_for("participant.landing", slug=slug, preview=1)


@bp.after_request
def _no_store(resp: Response) -> Response:
    """Researcher pages show participants' data: no browser or proxy may keep a copy."""
    if request.endpoint != "researcher.static":
        resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.app_context_processor
def _researcher_context() -> dict:
    return {"researcher_id": auth.current_researcher_id(), "logout_form": LogoutForm()}


# ---------------------------------------------------------------- log in / out


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        result = auth.attempt_login(
            db.session(), form.email.data, form.password.data, address=request.remote_addr
        )
        if result.researcher is not None:
            auth.log_in(result.researcher)
            return redirect(auth.safe_next(request.args.get("next")) or url_for("researcher.index"))
        if result.retry_after is not None:
            minutes = math.ceil(result.retry_after / 60)
            error = f"Too many wrong passwords: logins are locked; try again in {minutes} minute(s)."
            page = render_template("researcher/login.html", form=form, error=error)
            return page, 429, {"Retry-After": str(result.retry_after)}
        error = "Wrong email or password."
    status = 401 if error else 200
    return render_template("researcher/login.html", form=form, error=error), status


@bp.post("/logout")
@auth.login_required
def logout():
    if LogoutForm().validate_on_submit():
        auth.log_out()
    return redirect(url_for("researcher.login"))


# ---------------------------------------------------------------- studies


@bp.get("/")
@auth.login_required
def index():
    studies = db.session().scalars(select(Study).order_by(Study.created_at.desc())).all()
    stats = progress.study_progress(db.session(), [s.id for s in studies])
    return render_template("researcher/index.html", studies=studies, stats=stats)


@bp.get("/progress.json")
@auth.login_required
def progress_json():
    """Live progress of every study (the dashboard polls this)."""
    rows = db.session().execute(select(Study.id, Study.slug, Study.status)).all()
    stats = progress.study_progress(db.session(), [r.id for r in rows])
    return jsonify(
        studies=[{"slug": r.slug, "status": r.status, **stats[r.id].to_dict()} for r in rows]
    )


@bp.route("/studies/new", methods=["GET", "POST"])
@auth.login_required
def new_study():
    """The study builder: stimuli (upload or a stored study's), task and every setting."""
    form = NewStudyForm()
    form.stimuli_from.choices = [SelectChoice("", "(none: upload a manifest)")] + [
        SelectChoice(s.slug, f"{s.title} ({s.slug}, {s.task})")
        for s in db.session().scalars(select(Study).order_by(Study.slug))
    ]
    failed = builder.BuilderError({})
    if form.validate_on_submit():
        try:
            study = _create_from_form(form)
        except builder.BuilderError as exc:
            failed = exc
        except manifest.ManifestError as exc:
            failed = builder.from_manifest_error(exc, BUILDER_INPUTS)
        else:
            flash(f"Study {study.slug} created with {len(study.stimuli)} stimuli.")
            return redirect(url_for("researcher.study", slug=study.slug))
    elif request.method == "POST":
        failed = builder.BuilderError({k: "; ".join(v) for k, v in form.errors.items()
                                       if k in BUILDER_INPUTS},
                                      [f"{k}: {'; '.join(v)}" for k, v in form.errors.items()
                                       if k not in BUILDER_INPUTS])
    status = 400 if request.method == "POST" else 200
    sent = _sent_settings() if request.method == "POST" else None
    return render_template(
        "researcher/new_study.html", form=form, errors=failed.general, field_errors=failed.fields,
        items=builder.SETTINGS_FORM, values=field_values(builder.SETTINGS_FORM, None, sent),
    ), status


BUILDER_INPUTS = builder.SETTING_NAMES | {
    "task", "manifest", "stimuli_from", "image_folder", "settings", "title", "slug"}


def _sent_settings() -> dict[str, list[str]]:
    """The generated settings inputs of the posted form."""
    return {k: request.form.getlist(k) for k in request.form if k.startswith(SETTINGS_PREFIX)}


def _create_from_form(form: NewStudyForm) -> Study:
    definition = builder.definition_from_form(form.task.data, form.settings.data or "",
                                              _sent_settings())
    upload = form.manifest.data
    if form.stimuli_from.data:
        if upload:
            raise builder.BuilderError({"stimuli_from": "upload a manifest or pick a study, not both"})
        return builder.create_from_study(
            db.session(), _study_or_404(form.stimuli_from.data), definition,
            slug=form.slug.data or None, title=form.title.data or None, live=bool(form.live.data),
            created_by=auth.current_researcher_id(),
        )
    if not upload:
        raise builder.BuilderError({"manifest": "choose a manifest file, or pick a study's stimuli"})
    name = secure_filename(upload.filename or "") or "manifest"
    suffix = Path(name).suffix.lower()
    root = current_app.config["STIMULI_ROOT"]
    with tempfile.TemporaryDirectory(prefix="dp-upload-") as tmp:
        saved = Path(tmp) / f"upload{suffix}"
        upload.save(saved)
        if suffix == ".zip":
            path = unpack_bundle(saved, Path(tmp) / "bundle")
            base = path.parent
        elif suffix in (".csv", ".json"):
            path = saved
            base = resolve_image_dir(root, form.image_folder.data or "")
        else:
            raise manifest.ManifestError(
                [manifest.Problem(None, "manifest", "must be a .csv, .json or .zip file")]
            )
        rows = manifest.read_manifest(path)
        return manifest.create_study(
            db.session(),
            rows,
            base,
            definition,
            root,
            slug=form.slug.data or None,
            title=form.title.data or None,
            live=bool(form.live.data),
            created_by=auth.current_researcher_id(),
        )


@bp.route("/studies/<slug>/settings", methods=["GET", "POST"])
@auth.login_required
def edit_study(slug: str):
    """Edit a study's settings (the generated form): each saved edit is a new design version;
    participants who started earlier keep being served their version's settings."""
    s = _study_or_404(slug)
    form = EditSettingsForm()
    failed = builder.BuilderError({})
    if form.validate_on_submit():
        try:
            digest = builder.edit_settings(db.session(), s, _sent_settings())
        except builder.BuilderError as exc:
            failed = exc
        else:
            flash(f"Settings saved as design version {digest[:12]}; participants who started "
                  "under an earlier version keep its settings.")
            return redirect(url_for("researcher.edit_study", slug=slug), code=303)
    elif request.method == "POST":
        failed = builder.BuilderError({}, [f"{k}: {'; '.join(v)}" for k, v in form.errors.items()])
    sent = _sent_settings() if request.method == "POST" else None
    page = render_template(
        "researcher/edit_study.html", study=s, form=form, duplicate_form=DuplicateForm(),
        errors=failed.general, field_errors=failed.fields, items=builder.SETTINGS_FORM,
        values=field_values(builder.SETTINGS_FORM, s.settings, sent),
        current=design.current_design(db.session(), s)[0],
        versions=design.versions_of(db.session(), s.id), preview_url=preview_url(s.slug),
    )
    return page, 400 if request.method == "POST" else 200


@bp.post("/studies/<slug>/duplicate")
@auth.login_required
def duplicate_study(slug: str):
    """A draft copy of the study (same settings and stimuli, no participants)."""
    s = _study_or_404(slug)
    form = DuplicateForm()
    if not form.validate_on_submit():
        flash("; ".join(f"{k}: {'; '.join(v)}" for k, v in form.errors.items()))
        return redirect(url_for("researcher.edit_study", slug=slug), code=303)
    try:
        copy = builder.duplicate_study(db.session(), s, slug=form.slug.data,
                                       title=form.title.data or None,
                                       created_by=auth.current_researcher_id())
    except manifest.ManifestError as exc:
        flash("; ".join(str(p) for p in exc.problems))
        return redirect(url_for("researcher.edit_study", slug=slug), code=303)
    flash(f"Study {copy.slug} created as a copy of {slug} (draft, no participants).")
    return redirect(url_for("researcher.edit_study", slug=copy.slug), code=303)


@bp.get("/studies/<slug>")
@auth.login_required
def study(slug: str):
    s = _study_or_404(slug)
    stats = progress.study_progress(db.session(), [s.id])[s.id]
    return render_template(
        "researcher/study.html",
        study=s,
        stats=stats,
        preview_url=preview_url(s.slug),
        status_form=StatusForm(),
        tables=export.TABLES,
        formats=export.FORMATS,
        settings_json=json.dumps(s.settings, indent=2),
        gallery=dashboard_data.gallery(db.session(), s.id),
    )


@bp.get("/studies/<slug>/progress.json")
@auth.login_required
def study_progress_json(slug: str):
    s = _study_or_404(slug)
    stats = progress.study_progress(db.session(), [s.id])[s.id]
    return jsonify(slug=s.slug, status=s.status, **stats.to_dict())


# ---------------------------------------------------------------- charts (SVG)

# An SVG chart is a document of its own: no script at all, the inline styles matplotlib writes,
# and the stimulus it embeds as a data: image.
SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _svg(text: str) -> Response:
    resp = Response(text, mimetype="image/svg+xml")
    resp.headers["Content-Security-Policy"] = SVG_POLICY
    return resp


@bp.get("/studies/<slug>/charts/timeline.svg")
@auth.login_required
def chart_timeline(slug: str):
    """Participants started, completed and returned over time."""
    s = _study_or_404(slug)
    return _svg(charts.timeline_svg(dashboard_data.timeline_counts(db.session(), s.id)))


@bp.get("/studies/<slug>/charts/judgments.svg")
@auth.login_required
def chart_judgments(slug: str):
    """Accuracy and d' by model and guidance (real-or-fake studies)."""
    s = _study_or_404(slug)
    if s.task != "realfake":
        abort(404)
    title = "Real-or-fake judgments"
    try:
        trials, _ = dashboard_data.export_tables(db.session(), s)
    except AnalysisInputError as exc:
        return _svg(charts.message_svg(f"The stored answers cannot be analysed: {exc}", title))
    return _svg(charts.judgment_svg(dashboard_data.judgment_table(trials)))


@bp.get("/studies/<slug>/charts/heatmap/<int:stimulus_id>.svg")
@auth.login_required
def chart_heatmap(slug: str, stimulus_id: int):
    """One stimulus of a ClickMe study under its click heat map."""
    s = _study_or_404(slug)
    stim = db.session().get(Stimulus, stimulus_id) if 1 <= stimulus_id <= MAX_ID else None
    if s.task != "clickme" or stim is None or stim.study_id != s.id:
        abort(404)
    title = f"Click heat map of {stim.stimulus_key}"
    path = stimulus_file(current_app, stim)
    if path is None or not path.is_file():
        return _svg(charts.message_svg("The image file of this stimulus is missing.", title))
    try:
        trials, clicks = dashboard_data.export_tables(db.session(), s, stim)
    except AnalysisInputError as exc:
        return _svg(charts.message_svg(f"The stored clicks cannot be analysed: {exc}", title))
    found = dashboard_data.heat_map(trials, clicks, dashboard_data.stimulus_pixels(path))
    trials_word = "trial" if found.n_trials == 1 else "trials"
    caption = f"{stim.stimulus_key} ({found.n_trials} {trials_word})"
    return _svg(charts.heatmap_svg(found.image, found.heat, caption))


@bp.post("/studies/<slug>/status")
@auth.login_required
def study_status(slug: str):
    s = _study_or_404(slug)
    form = StatusForm()
    if not form.validate_on_submit():
        flash("status: must be one of live, paused, closed")
        return redirect(url_for("researcher.study", slug=slug), code=303)
    try:
        set_status(db.session(), s, form.status.data)
    except StatusError as exc:
        flash(str(exc))
    else:
        flash(f"Study {slug} is now {s.status}.")
    return redirect(url_for("researcher.study", slug=slug), code=303)


# ---------------------------------------------------------------- export


def _pseudonymise() -> bool:
    return request.args.get("raw") not in ("1", "true", "yes")


@bp.get("/studies/<slug>/export/<table>.<fmt>")
@auth.login_required
def export_table(slug: str, table: str, fmt: str):
    """One table of the export, streamed: CSV chunk by chunk, Parquet from a spooled temp file."""
    if table not in export.TABLES or fmt not in export.FORMATS:
        abort(404)
    s = _study_or_404(slug)
    key = current_app.config["SECRET_KEY"]
    pseudo = _pseudonymise()
    batches = export.iter_batches(db.session(), s, table, key, pseudonymise=pseudo)
    filename = f"{s.slug}-{table}.{fmt}"
    if fmt == "csv":
        body = stream_with_context(export.csv_chunks(table, batches))
        resp = Response(body, mimetype="text/csv")
    else:
        fd, tmp = tempfile.mkstemp(prefix="dp-export-", suffix=".parquet")
        os.close(fd)
        try:
            export.write_parquet(table, batches, tmp)
            resp = send_file(tmp, mimetype="application/vnd.apache.parquet", download_name=filename, as_attachment=True)
        except BaseException:
            os.unlink(tmp)
            raise
        resp.call_on_close(lambda: os.path.exists(tmp) and os.unlink(tmp))
    resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/studies/<slug>/export/data_dictionary.json")
@auth.login_required
def export_dictionary(slug: str):
    s = _study_or_404(slug)
    fmt = request.args.get("format", "csv")
    if fmt not in export.FORMATS:
        abort(404)
    resp = jsonify(export.data_dictionary(s, pseudonymise=_pseudonymise(), fmt=fmt))
    resp.headers["Cache-Control"] = "no-store"
    return resp

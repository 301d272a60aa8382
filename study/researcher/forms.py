"""The researcher side's forms (flask-wtf: every one carries a CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import AnyOf, DataRequired, Length, Optional, Regexp

from study.researcher.status import TARGETS
from study.tables import TASKS

SLUG_RULE = Regexp(r"^[a-z0-9][a-z0-9-]{0,63}$", message="lower-case letters, digits and '-'")


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=255)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class LogoutForm(FlaskForm):
    pass


class NewStudyForm(FlaskForm):
    """The study builder's own fields; the task settings' inputs are generated from the settings
    model (study/researcher/settings_form.py). Stimuli: an uploaded manifest, or those of a
    study already on the server (`stimuli_from`, choices set by the view)."""

    task = SelectField("Task", choices=list(TASKS), default="realfake")
    manifest = FileField(
        "Manifest (.csv, .json, or a .zip bundle with the manifest and its images)",
    )
    stimuli_from = SelectField("Or use the stimuli of a study on the server", choices=[""],
                               default="")
    image_folder = StringField(
        "Image folder on the server, relative to STIMULI_ROOT (for a bare .csv/.json)",
        validators=[Optional(), Length(max=500)],
    )
    settings = TextAreaField(
        "Settings file (optional JSON object: conditions, texts, and any setting, which takes the "
        "place of its input above)",
        validators=[Optional(), Length(max=100_000)],
    )
    title = StringField("Title", validators=[Optional(), Length(max=200)])
    slug = StringField("Slug (URL name)", validators=[Optional(), SLUG_RULE])
    live = BooleanField("Make it live now")


class EditSettingsForm(FlaskForm):
    """The CSRF token of the settings editor; the inputs are generated from the settings model."""


class DuplicateForm(FlaskForm):
    slug = StringField("Slug of the copy (URL name)", validators=[DataRequired(), SLUG_RULE])
    title = StringField("Title of the copy", validators=[Optional(), Length(max=200)])


class StatusForm(FlaskForm):
    status = HiddenField(validators=[DataRequired(), AnyOf(TARGETS)])

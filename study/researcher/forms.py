"""The researcher side's forms (flask-wtf: every one carries a CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, StringField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, Length, Optional, Regexp

from study.researcher.status import TARGETS


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=255)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class LogoutForm(FlaskForm):
    pass


class NewStudyForm(FlaskForm):
    manifest = FileField(
        "Manifest (.csv, .json, or a .zip bundle with the manifest and its images)",
        validators=[FileRequired("choose a manifest file")],
    )
    image_folder = StringField(
        "Image folder on the server, relative to STIMULI_ROOT (for a bare .csv/.json)",
        validators=[Optional(), Length(max=500)],
    )
    settings = TextAreaField(
        "Settings (JSON object: task, title, conditions and task settings)",
        validators=[Optional(), Length(max=100_000)],
    )
    title = StringField("Title", validators=[Optional(), Length(max=200)])
    slug = StringField(
        "Slug (URL name)",
        validators=[Optional(), Regexp(r"^[a-z0-9][a-z0-9-]{0,63}$", message="lower-case letters, digits and '-'")],
    )
    live = BooleanField("Make it live now")


class StatusForm(FlaskForm):
    status = HiddenField(validators=[DataRequired(), AnyOf(TARGETS)])

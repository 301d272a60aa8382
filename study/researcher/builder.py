"""The study builder's work apart from HTTP: reading the generated settings form into a study
definition, making a study from stimuli already stored (another study's), duplicating a study
and editing a study's settings (each edit is a new design version, study/participation/design).

Errors are `BuilderError`: the message of each form field at fault (the dotted setting name,
or a form field's name), and the problems that belong to no one field.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from study import manifest
from study.manifest import ManifestError, StudyDefinition
from study.participation import design
from study.researcher.settings_form import (
    SettingField,
    SettingGroup,
    all_fields,
    deep_merge,
    form_settings,
    settings_fields,
)
from study.settings import SettingsError, StudySettings
from study.tables import Condition, Stimulus, Study

SETTINGS_FORM: tuple[SettingField | SettingGroup, ...] = settings_fields(StudySettings)
SETTING_NAMES = frozenset(f.name for f in all_fields(SETTINGS_FORM))


class BuilderError(ValueError):
    """`fields`: message per form field (setting names dotted); `general`: the other problems."""

    def __init__(self, fields: dict[str, str], general: list[str] | None = None) -> None:
        super().__init__("; ".join([f"{k}: {v}" for k, v in fields.items()] + (general or [])))
        self.fields = fields
        self.general = general or []


def from_manifest_error(exc: ManifestError, known: frozenset[str]) -> BuilderError:
    """A ManifestError's problems at the inputs they name (`known` form fields), the rest as
    general problems (manifest rows, conditions)."""
    fields: dict[str, str] = {}
    general: list[str] = []
    for p in exc.problems:
        if p.row is None and p.column in known and p.column not in fields:
            fields[p.column] = p.message
        else:
            general.append(str(p))
    return BuilderError(fields, general)


def _json_object(text: str, field: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BuilderError({field: f"is not valid JSON ({exc.msg}, line {exc.lineno})"}) from None
    if not isinstance(value, dict):
        raise BuilderError({field: "must be a JSON object"})
    if isinstance(value.get("settings"), dict):  # a nested "settings" object, as in a manifest
        value = {**value.pop("settings"), **value}
    return value


def definition_from_form(task: str, settings_json: str,
                         submitted: Mapping[str, list[str]]) -> StudyDefinition:
    """The study definition of a builder form: the generated settings inputs, then the keys of
    the optional JSON text (a settings file: conditions, texts, any setting) on top."""
    raw, errors = form_settings(SETTINGS_FORM, submitted)
    try:
        extra = _json_object(settings_json, "settings")
    except BuilderError as exc:
        errors.update(exc.fields)
        extra = {}
    if errors:
        raise BuilderError(errors)
    try:
        return manifest.parse_definition(deep_merge({"task": task, **raw}, extra))
    except ManifestError as exc:
        raise from_manifest_error(exc, SETTING_NAMES | {"task", "settings"}) from None


def _copy_stimuli(source: Study) -> list[Stimulus]:
    """New rows for `source`'s stimuli (the image store is content-addressed: files shared)."""
    keep = ("stimulus_key", "path", "sha256", "source", "model_name", "class_label", "class_text",
            "exemplar_id", "width", "height", "role", "generation")
    return [Stimulus(**{k: getattr(s, k) for k in keep}) for s in source.stimuli]


def _new_slug(s: Session, slug: str | None, fallback: str) -> str:
    slug = manifest.check_slug(slug or manifest.slugify(fallback))
    if s.scalar(select(Study.id).where(Study.slug == slug)) is not None:
        raise ManifestError([manifest.Problem(None, "slug", f"a study called {slug!r} already exists")])
    return slug


def _store(s: Session, study: Study) -> str:
    """Commit `study` with its design version recorded; gives the version's hash."""
    try:
        s.add(study)
        s.flush()
        digest = design.record_version(s, study)
        s.commit()
    except BaseException:
        s.rollback()
        raise
    return digest


def create_from_study(s: Session, source: Study, definition: StudyDefinition, *,
                      slug: str | None, title: str | None, live: bool,
                      created_by: int | None) -> Study:
    """A new study with `definition`'s settings over the stimuli of `source` (same task)."""
    if source.task != definition.task:
        raise ManifestError([manifest.Problem(
            None, "stimuli_from",
            f"{source.slug} is a {source.task} study; pick stimuli of a {definition.task} study")])
    definition = manifest.check_roles(source.stimuli, definition)
    slug = _new_slug(s, slug or definition.slug, title or definition.title or source.slug)
    study = Study(
        slug=slug, title=title or definition.title or slug, task=definition.task,
        status="live" if live else "draft", settings=definition.settings.to_dict(),
        completion_code=definition.completion_code or secrets.token_hex(4).upper(),
        screened_out_code=definition.screened_out_code, consent_text=definition.consent_text,
        instructions_text=definition.instructions_text, created_by=created_by,
    )
    study.conditions = [Condition(name=n, settings=o) for n, o in definition.conditions.items()]
    study.stimuli = _copy_stimuli(source)
    _store(s, study)
    return study


def duplicate_study(s: Session, source: Study, *, slug: str, title: str | None,
                    created_by: int | None) -> Study:
    """A draft copy of `source` under `slug`: the same settings, conditions, texts, codes and
    stimuli (so the same design hash), and no participants."""
    study = Study(
        slug=_new_slug(s, slug, slug), title=title or f"{source.title} (copy)", task=source.task,
        status="draft", settings=dict(source.settings), completion_code=source.completion_code,
        screened_out_code=source.screened_out_code, consent_text=source.consent_text,
        instructions_text=source.instructions_text, created_by=created_by,
    )
    study.conditions = [Condition(name=c.name, settings=dict(c.settings)) for c in source.conditions]
    study.stimuli = _copy_stimuli(source)
    _store(s, study)
    return study


def edit_settings(s: Session, study: Study, submitted: Mapping[str, list[str]]) -> str:
    """Store the submitted settings form as `study`'s settings and record them as a design
    version; gives its hash. Participants who started earlier keep their version's settings."""
    raw, errors = form_settings(SETTINGS_FORM, submitted)
    if errors:
        raise BuilderError(errors)
    try:
        settings = StudySettings.from_dict(deep_merge(study.settings, raw))
    except SettingsError as exc:
        known = exc.field in SETTING_NAMES
        raise BuilderError({exc.field: exc.message} if known else {},
                           [] if known else [str(exc)]) from None
    if settings.n_catch and not any(st.role == "catch" for st in study.stimuli):
        raise BuilderError({"n_catch": "the study has no catch stimuli; set 0"})
    study.settings = settings.to_dict()
    return _store(s, study)

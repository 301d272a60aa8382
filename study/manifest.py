"""Stimulus manifests (docs/formats.md section 1): parse, validate, and turn into a Study.

`read_manifest(path)` parses `manifest.csv` or `manifest.json` and checks every field;
`check_images(rows, base_dir)` checks that each PNG exists, that its sha256 matches and reads its
size with Pillow; `create_study(...)` stores a Study, its conditions and its Stimulus rows in one
transaction and copies each image into the stimulus store under STIMULI_ROOT.

The store is content-addressed (`STIMULI_ROOT/<sha[:2]>/<sha>.png`, kept in `Stimulus.path`): the
file name a participant's browser sees says nothing about the image's source or model, and two
studies that share an image share its file.

Participants are told what an image shows in words, never by its class id: a row's
`class_text`, or for a manifest without one the class_label itself when it is plain words
(`hot_air_balloon` -> "hot air balloon"). A ClickMe study refuses rows that have neither, since
its page must name the class (`digit4_rot270` is an id, not words).

All problems are collected and raised together as a ManifestError whose lines name the row
(1-based data row) and the column.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
import secrets
import shutil
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.orm import Session

from study.settings import SettingsError, StudySettings
from study.tables import SOURCES, TASKS, TRIAL_KINDS, Condition, Stimulus, Study

REQUIRED = ("stimulus_id", "path", "sha256", "source", "class_label", "dataset", "split")
OPTIONAL = (
    "class_text", "model", "exemplar_id", "guidance", "sampler", "steps", "seed", "checkpoint", "role",
    "width", "height",
)
COLUMNS = REQUIRED + OPTIONAL
SPLITS = ("train", "heldout")
SAMPLERS = ("ddpm", "ddim")
_SHA = re.compile(r"^[0-9a-f]{64}$")
# Plain words: letters of any script, separated by single spaces, hyphens or apostrophes.
_WORDS = re.compile(r"^[^\W\d_]+(?:[ '-][^\W\d_]+)*$")
# The class_label of samples from an unconditional model (models.sample): no class at all.
NO_CLASS = "unconditional"
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
MAX_ROWS = 100_000
# Study-level keys of a settings file; every other key is a StudySettings field.
STUDY_KEYS = (
    "title", "task", "slug", "completion_code", "screened_out_code", "consent_text",
    "instructions_text", "conditions",
)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a manifest: where (row, column) and what."""

    row: int | None  # 1-based data row; None for the file as a whole
    column: str | None
    message: str

    def __str__(self) -> str:
        if self.row is None:  # the file as a whole, a header column or a setting
            return f"{self.column or 'manifest'}: {self.message}"
        where = f"row {self.row}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.message}"


class ManifestError(ValueError):
    """A manifest (or a study definition) is invalid; `problems` lists every fault found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        shown = "\n".join(str(p) for p in problems[:50])
        more = f"\n... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{len(problems)} problem(s) found:\n{shown}{more}")

    @property
    def field(self) -> str | None:
        first = self.problems[0] if self.problems else None
        return first.column if first else None


@dataclass
class ManifestRow:
    """One validated manifest row (types as in docs/formats.md section 1)."""

    row: int
    stimulus_id: str
    path: str
    sha256: str
    source: str
    class_label: str
    dataset: str
    split: str
    class_text: str | None = None
    model: str | None = None
    exemplar_id: str | None = None
    guidance: float | None = None
    sampler: str | None = None
    steps: int | None = None
    seed: int | None = None
    checkpoint: str | None = None
    role: str = "main"
    width: int | None = None
    height: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def generation(self) -> dict[str, Any]:
        """The generation parameters kept in Stimulus.generation (JSON)."""
        out = {
            "guidance": self.guidance, "sampler": self.sampler, "steps": self.steps,
            "seed": self.seed, "checkpoint": self.checkpoint, "dataset": self.dataset,
            "split": self.split,
        }
        out = {k: v for k, v in out.items() if v is not None}
        if self.extra:  # the generator's own columns, kept for the record
            out["extra"] = {k: str(v) for k, v in self.extra.items()}
        return out


@dataclass
class StudyDefinition:
    """A validated settings file: study-level fields plus the task settings."""

    settings: StudySettings
    title: str | None = None
    task: str = "realfake"
    slug: str | None = None
    completion_code: str | None = None
    screened_out_code: str | None = None
    consent_text: str = ""
    instructions_text: str = ""
    conditions: dict[str, dict[str, Any]] = field(default_factory=dict)
    asked: frozenset[str] = frozenset()  # the task settings the file sets itself (not defaults)


# ---------------------------------------------------------------- parsing


def read_manifest(path: str | Path) -> list[ManifestRow]:
    """Parse and validate `path` (.csv or .json); raises ManifestError naming row and column."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError([Problem(None, None, f"file not found: {path}")])
    data = path.read_bytes()
    return parse_manifest(data, path.suffix.lower())


def parse_manifest(data: bytes, suffix: str) -> list[ManifestRow]:
    """Parse manifest bytes; `suffix` is ".csv" or ".json"."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ManifestError([Problem(None, None, "is not UTF-8 text")]) from None
    if suffix == ".json":
        raw_rows = _json_rows(text)
    elif suffix == ".csv":
        raw_rows = _csv_rows(text)
    else:
        raise ManifestError([Problem(None, None, f"must be a .csv or .json file, not {suffix!r}")])
    if not raw_rows:
        raise ManifestError([Problem(None, None, "has no rows")])
    if len(raw_rows) > MAX_ROWS:
        raise ManifestError([Problem(None, None, f"has more than {MAX_ROWS} rows")])
    problems: list[Problem] = []
    rows = [_validate_row(i, raw, problems) for i, raw in enumerate(raw_rows, start=1)]
    seen: dict[str, int] = {}
    for row in rows:
        if row.stimulus_id in seen:
            problems.append(Problem(row.row, "stimulus_id", f"duplicate of row {seen[row.stimulus_id]}"))
        elif row.stimulus_id:
            seen[row.stimulus_id] = row.row
    if problems:
        raise ManifestError(problems)
    return rows


def _csv_rows(text: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ManifestError([Problem(None, c, "column missing from the header") for c in missing])
    rows = []
    for raw in reader:
        if None in raw:
            raise ManifestError([Problem(len(rows) + 1, None, "has more fields than the header")])
        rows.append({k: v for k, v in raw.items() if k is not None})
    return rows


def _json_rows(text: str) -> list[dict[str, Any]]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError([Problem(None, None, f"is not valid JSON ({exc.msg}, line {exc.lineno})")]) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("stimuli"), list):
        raise ManifestError([Problem(None, "stimuli", 'must be an object {"version": 1, "stimuli": [...]}')])
    if doc.get("version", 1) != 1:
        raise ManifestError([Problem(None, "version", "only version 1 is understood")])
    rows = doc["stimuli"]
    for i, raw in enumerate(rows, start=1):
        if not isinstance(raw, dict):
            raise ManifestError([Problem(i, None, "must be an object")])
    return rows


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _validate_row(index: int, raw: dict[str, Any], problems: list[Problem]) -> ManifestRow:
    def bad(column: str, message: str) -> None:
        problems.append(Problem(index, column, message))

    def text(column: str, required: bool, max_len: int = 500) -> str | None:
        value = raw.get(column)
        if _blank(value):
            if required:
                bad(column, "is required")
            return None
        if not isinstance(value, str):
            value = str(value)
        value = value.strip()
        if len(value) > max_len:
            bad(column, f"must be at most {max_len} characters")
        return value

    def choice(column: str, allowed: tuple[str, ...], default: str | None) -> str | None:
        value = text(column, required=default is None and column in REQUIRED)
        if value is None:
            return default
        if value not in allowed:
            bad(column, f"must be one of {', '.join(allowed)} (got {value!r})")
        return value

    def number(column: str, integer: bool, lo: float | None = None) -> Any:
        value = raw.get(column)
        if _blank(value):
            return None
        try:
            if isinstance(value, bool):
                raise ValueError
            num = float(value)
            if not math.isfinite(num):
                raise ValueError
            if integer:
                if num != int(num):
                    raise ValueError
                num = int(num)
        except (TypeError, ValueError):
            bad(column, f"must be {'an integer' if integer else 'a number'} (got {value!r})")
            return None
        if lo is not None and num < lo:
            bad(column, f"must be at least {lo:g}")
            return None
        return num

    stimulus_id = text("stimulus_id", required=True, max_len=128) or ""
    path = text("path", required=True) or ""
    if path and (Path(path).is_absolute() or ".." in Path(path).parts or "\\" in path):
        bad("path", "must be a relative path inside the manifest's folder")
    sha = (text("sha256", required=True) or "").lower()
    if sha and not _SHA.match(sha):
        bad("sha256", "must be 64 hexadecimal characters")
    source = choice("source", SOURCES, None) or ""
    model = text("model", required=False, max_len=64)
    if source == "model" and model is None:
        bad("model", "is required when source is model")
    row = ManifestRow(
        row=index,
        stimulus_id=stimulus_id,
        path=path,
        sha256=sha,
        source=source,
        class_label=text("class_label", required=True, max_len=128) or "",
        class_text=text("class_text", required=False, max_len=200),
        dataset=text("dataset", required=True, max_len=128) or "",
        split=choice("split", SPLITS, None) or "",
        model=model,
        exemplar_id=text("exemplar_id", required=False, max_len=128),
        guidance=number("guidance", integer=False),
        sampler=choice("sampler", SAMPLERS, "") or None,
        steps=number("steps", integer=True, lo=1),
        seed=number("seed", integer=True),
        checkpoint=text("checkpoint", required=False),
        role=choice("role", TRIAL_KINDS, "main") or "main",
        width=number("width", integer=True, lo=1),
        height=number("height", integer=True, lo=1),
    )
    row.extra = {k: v for k, v in raw.items() if k not in COLUMNS and not _blank(v)}
    return row


def words_of_label(class_label: str) -> str | None:
    """The class_label as a participant may read it when it is plain words (underscores read as
    spaces: `hot_air_balloon` -> "hot air balloon"); None for an id (`digit4_rot270`,
    `Balinese/character01`) or for the unconditional model's `unconditional`."""
    words = " ".join(class_label.replace("_", " ").split())
    if not _WORDS.match(words) or words.lower() == NO_CLASS:
        return None
    return words


def shown_class(row: ManifestRow | Stimulus) -> str | None:
    """What a participant is told the image of a manifest row or a stored stimulus shows: its
    class_text, else its class_label when that is plain words (stimuli stored before class
    texts existed), else None."""
    return row.class_text or words_of_label(row.class_label)


# ---------------------------------------------------------------- images


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_images(rows: Iterable[ManifestRow], base_dir: str | Path) -> None:
    """Check each row's image under `base_dir`: exists, sha256 matches, Pillow can read it; fill
    width/height from the file (a declared size that disagrees is an error)."""
    base = Path(base_dir).resolve()
    problems: list[Problem] = []
    for row in rows:
        file = (base / row.path).resolve()
        if not file.is_relative_to(base):
            problems.append(Problem(row.row, "path", "points outside the manifest's folder"))
            continue
        if not file.is_file():
            problems.append(Problem(row.row, "path", f"file not found: {row.path}"))
            continue
        actual = sha256_file(file)
        if actual != row.sha256:
            problems.append(Problem(row.row, "sha256", f"does not match the file (file has {actual})"))
            continue
        try:
            with Image.open(file) as img:
                width, height = img.size
        except (UnidentifiedImageError, OSError):
            problems.append(Problem(row.row, "path", f"is not an image Pillow can read: {row.path}"))
            continue
        for column, declared, real in (("width", row.width, width), ("height", row.height, height)):
            if declared is not None and declared != real:
                problems.append(Problem(row.row, column, f"says {declared} but the image has {real}"))
        row.width, row.height = width, height
    if problems:
        raise ManifestError(problems)


def store_image(source: Path, sha: str, stimuli_root: str | Path) -> str:
    """Copy `source` into the content-addressed store; returns its path relative to the root."""
    relative = f"{sha[:2]}/{sha}{source.suffix.lower() or '.png'}"
    target = Path(stimuli_root) / relative
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + f".{secrets.token_hex(4)}.tmp")
        shutil.copyfile(source, tmp)
        tmp.replace(target)  # atomic: a concurrent reader never sees half a file
    return relative


# ---------------------------------------------------------------- study definition


def load_definition(path: str | Path | None) -> dict[str, Any]:
    """Read a settings file (.json or .toml) into a dict; ManifestError names the problem."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise ManifestError([Problem(None, "settings", f"file not found: {path}")])
    suffix = path.suffix.lower()
    if suffix not in (".json", ".toml"):
        raise ManifestError([Problem(None, "settings", "must be a .json or .toml file")])
    try:
        text = path.read_text(encoding="utf-8")
        doc = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError and TOMLDecodeError included
        raise ManifestError([Problem(None, "settings", f"cannot be parsed: {exc}")]) from None
    if not isinstance(doc, dict):
        raise ManifestError([Problem(None, "settings", "must be an object (a table of keys)")])
    return doc


def parse_definition(raw: dict[str, Any]) -> StudyDefinition:
    """Split `raw` into study-level keys and validated StudySettings (errors name the field)."""
    raw = dict(raw)
    if isinstance(raw.get("settings"), dict):  # a nested "settings" object is also accepted
        raw = {**raw.pop("settings"), **raw}
    study = {k: raw.pop(k) for k in STUDY_KEYS if k in raw}

    def fail(column: str, message: str) -> ManifestError:
        return ManifestError([Problem(None, column, message)])

    try:
        settings = StudySettings.from_dict(raw)
    except SettingsError as exc:
        raise fail(exc.field, exc.message) from None
    for key in ("title", "completion_code", "screened_out_code", "consent_text", "instructions_text"):
        if key in study and not isinstance(study[key], str):
            raise fail(key, "must be a string")
    task = study.get("task", "realfake")
    if task not in TASKS:
        raise fail("task", f"must be one of {', '.join(TASKS)}")
    slug = study.get("slug")
    if slug is not None:
        slug = check_slug(slug)
    for key, limit in (("title", 200), ("completion_code", 64), ("screened_out_code", 64)):
        if len(study.get(key) or "") > limit:
            raise fail(key, f"must be at most {limit} characters")
    conditions = _conditions(study.get("conditions"), settings)
    return StudyDefinition(
        settings=settings,
        title=study.get("title"),
        task=task,
        slug=slug,
        completion_code=study.get("completion_code"),
        screened_out_code=study.get("screened_out_code"),
        consent_text=study.get("consent_text", ""),
        instructions_text=study.get("instructions_text", ""),
        conditions=conditions,
        asked=frozenset(raw),
    )


def _conditions(raw: Any, settings: StudySettings) -> dict[str, dict[str, Any]]:
    """Conditions as {name: overrides}: a list of names or {name: overrides}; default one."""
    if raw is None:
        return {"default": {}}
    if isinstance(raw, list):
        raw = {name: {} for name in raw}
    if not isinstance(raw, dict) or not raw:
        raise ManifestError([Problem(None, "conditions", "must be a non-empty list of names or an object {name: overrides}")])
    out = {}
    for name, overrides in raw.items():
        if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9_.-]{1,64}$", name):
            raise ManifestError([Problem(None, "conditions", f"name {name!r} must be 1-64 letters, digits, _ . -")])
        try:
            settings.merged(overrides or {})
        except SettingsError as exc:
            raise ManifestError([Problem(None, f"conditions.{name}.{exc.field}", exc.message)]) from None
        out[name] = dict(overrides or {})
    return out


def check_slug(slug: Any) -> str:
    if not isinstance(slug, str) or not _SLUG.match(slug):
        raise ManifestError([Problem(None, "slug", "must be 1-64 characters: lower-case letters, digits and '-', starting with a letter or digit")])
    return slug


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48]
    return slug or "study"


# ---------------------------------------------------------------- creation


def create_study(
    db: Session,
    rows: list[ManifestRow],
    base_dir: str | Path,
    definition: StudyDefinition,
    stimuli_root: str | Path,
    *,
    slug: str | None = None,
    title: str | None = None,
    live: bool = False,
    created_by: int | None = None,
) -> Study:
    """Check the images, then add the Study, its conditions and stimuli and commit once.

    Images are copied into the store before the transaction; a failed commit leaves at most
    unreferenced, content-addressed files behind, never half a study."""
    slug = check_slug(slug or definition.slug or slugify(title or definition.title or "study"))
    if db.scalar(select(Study.id).where(Study.slug == slug)) is not None:
        raise ManifestError([Problem(None, "slug", f"a study called {slug!r} already exists")])
    definition = check_roles(rows, definition)
    if definition.task == "clickme":
        _check_class_texts(rows)
    check_images(rows, base_dir)
    base = Path(base_dir)
    stored = {row.stimulus_id: store_image(base / row.path, row.sha256, stimuli_root) for row in rows}
    study = Study(
        slug=slug,
        title=title or definition.title or slug,
        task=definition.task,
        status="live" if live else "draft",
        settings=definition.settings.to_dict(),
        completion_code=definition.completion_code or secrets.token_hex(4).upper(),
        screened_out_code=definition.screened_out_code,
        consent_text=definition.consent_text,
        instructions_text=definition.instructions_text,
        created_by=created_by,
    )
    study.conditions = [Condition(name=n, settings=o) for n, o in definition.conditions.items()]
    study.stimuli = [
        Stimulus(
            stimulus_key=row.stimulus_id,
            path=stored[row.stimulus_id],
            sha256=row.sha256,
            source=row.source,
            model_name=row.model,
            class_label=row.class_label,
            class_text=shown_class(row),
            exemplar_id=row.exemplar_id,
            width=row.width,
            height=row.height,
            role=row.role,
            generation=row.generation(),
        )
        for row in rows
    ]
    try:
        db.add(study)
        db.commit()
    except BaseException:
        db.rollback()
        raise
    return study


def check_roles(rows: list[Any], definition: StudyDefinition) -> StudyDefinition:
    """A study needs main stimuli (practice falls back to them). Catch trials need catch rows:
    a settings file or condition that asks for catch trials of a manifest without any is
    refused; without catch rows the default n_catch becomes 0, so the stored settings say what
    participants get. Returns the definition to store. `rows`: manifest rows or stored stimuli
    (anything with a `role`)."""
    if not any(r.role == "main" for r in rows):
        raise ManifestError([Problem(None, "role", "the manifest has no rows with role main")])
    if any(r.role == "catch" for r in rows):
        return definition
    asking = [("n_catch", definition.settings.n_catch)] if "n_catch" in definition.asked else []
    asking += [(f"conditions.{name}.n_catch", overrides["n_catch"])
               for name, overrides in definition.conditions.items() if "n_catch" in overrides]
    problems = [
        Problem(None, where, f"asks for {n} catch trial(s) per participant, but the manifest has no "
                             "rows with role catch; mark some rows role = catch or set n_catch = 0")
        for where, n in asking if n
    ]
    if problems:
        raise ManifestError(problems)
    if definition.settings.n_catch and "n_catch" not in definition.asked:
        return replace(definition, settings=definition.settings.merged({"n_catch": 0}))
    return definition


def _check_class_texts(rows: list[ManifestRow]) -> None:
    """A ClickMe page tells the participant what the image shows: every row needs words."""
    problems = [
        Problem(row.row, "class_text",
                f"is needed in a ClickMe study: the class_label {row.class_label!r} is not words a "
                "participant understands; give the class as a person would say it (e.g. "
                "\"the digit 4, rotated a quarter turn to the right\")")
        for row in rows if shown_class(row) is None
    ]
    if problems:
        raise ManifestError(problems)

"""Export a study's data as tidy tables (docs/formats.md section 3), streamed in batches.

Three tables: `trials` (one row per trial that has a response), `clicks` (one row per point) and
`events`, each as CSV or Parquet, plus `data_dictionary.json`, which also records the staircase
settings each condition ran with (the analysis replays the staircase with them). Rows come from
the database with `yield_per` (a server-side cursor on PostgreSQL) and are written batch by batch
(pyarrow's ParquetWriter for Parquet), so memory stays bounded by the batch size, never the
table size.

External ids are pseudonymised by default: HMAC-SHA256 keyed with the app's SECRET_KEY,
truncated to 16 hex characters -- stable within one deployment (the same person gets the same
code in every study and export) and not reversible without the key.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Select, select
from sqlalchemy.orm import Session, object_session

from study.export_views import clicks_from, events_from, trials_from
from study.participation import design
from study.participation.rules import merged_settings
from study.tables import (
    BrowserEvent,
    Click,
    Condition,
    Participant,
    Response,
    Stimulus,
    Study,
    Trial,
)

FORMATS = ("csv", "parquet")
TABLES = ("trials", "clicks", "events")
PSEUDONYM_CHARS = 16
DEFAULT_BATCH = 2_000


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # string | int | float | datetime (ISO8601 text)
    description: str


_ARROW = {"string": pa.string(), "int": pa.int64(), "float": pa.float64(), "datetime": pa.string()}

COLUMNS: dict[str, tuple[Column, ...]] = {
    "trials": (
        Column("study", "string", "study slug"),
        Column("task", "string", "clickme or realfake"),
        Column("participant", "string", "pseudonymised participant id (HMAC-SHA256 of the external id, 16 hex characters) or the raw external id when exported with --no-pseudonymise"),
        Column("participant_status", "string", "started / completed / returned / screened_out"),
        Column("condition", "string", "condition name"),
        Column("trial_index", "int", "0-based order of presentation"),
        Column("trial_kind", "string", "practice / main / catch"),
        Column("stimulus_id", "string", "the manifest's stimulus_id"),
        Column("source", "string", "real / model"),
        Column("model", "string", "model name; empty for real images"),
        Column("class_label", "string", "class from the manifest"),
        Column("exemplar_id", "string", "the real image that conditioned the sample, from the manifest"),
        Column("guidance", "float", "classifier-free guidance scale w, from the manifest"),
        Column("sampler", "string", "ddpm / ddim, from the manifest"),
        Column("steps", "int", "sampling steps, from the manifest"),
        Column("seed", "int", "the sample's random seed, from the manifest"),
        Column("answer", "string", "real / fake; empty for ClickMe"),
        Column("correct", "int", "1 if the answer was right, 0 if wrong; empty for ClickMe"),
        Column("confidence", "int", "confidence rating; empty when not asked"),
        Column("rt_ms", "float", "reaction time in ms from the frame the image appeared"),
        Column("exposure_ms", "float", "exposure actually used in ms (empty: until the answer)"),
        Column("n_clicks", "int", "number of click points"),
        Column("client_uuid", "string", "the response's client-made UUID"),
        Column("received_at", "datetime", "when the server stored the response, ISO8601 UTC"),
        Column("design_hash", "string", "hash of the settings and stimulus set the participant started under (docs/researchers.md)"),
    ),
    "clicks": (
        Column("study", "string", "study slug"),
        Column("participant", "string", "participant id as in trials"),
        Column("trial_index", "int", "0-based order of presentation"),
        Column("stimulus_id", "string", "the manifest's stimulus_id"),
        Column("order", "int", "0-based order of the point within the trial"),
        Column("x", "float", "horizontal image coordinate in [0, 1], left to right"),
        Column("y", "float", "vertical image coordinate in [0, 1], top to bottom"),
        Column("t_ms", "float", "ms since the image appeared"),
        Column("stroke", "int", "stroke number; points of one drag share it"),
    ),
    "events": (
        Column("study", "string", "study slug"),
        Column("participant", "string", "participant id as in trials"),
        Column("trial_index", "int", "trial shown when the event happened; empty outside trials"),
        Column("kind", "string", "blur, focus, resize, fullscreen_enter, ..."),
        Column("t_ms", "float", "client clock (performance.now()) in ms"),
        Column("detail", "string", "JSON object with the event's details"),
        Column("received_at", "datetime", "when the server stored the event, ISO8601 UTC"),
    ),
}


class ExportError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def pseudonym(identifier: str, secret_key: str) -> str:
    """HMAC-SHA256 of `identifier` keyed with `secret_key`, first 16 hex characters."""
    mac = hmac.new(secret_key.encode(), b"participant:" + identifier.encode(), hashlib.sha256)
    return mac.hexdigest()[:PSEUDONYM_CHARS]


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite hands back naive datetimes; they were stored as UTC
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _identity(participant_external: str | None, public_id: str) -> str:
    return participant_external or public_id


# ---------------------------------------------------------------- queries


def _trials_query(study_id: int) -> Select:
    return (
        trials_from(select(
            Study.slug, Study.task, Participant.external_id, Participant.public_id,
            Participant.status, Condition.name, Trial.index, Trial.kind, Stimulus.stimulus_key,
            Stimulus.source, Stimulus.model_name, Stimulus.class_label, Stimulus.exemplar_id,
            Stimulus.generation, Response.answer, Response.correct, Response.confidence,
            Response.rt_ms, Response.exposure_ms, Response.n_clicks, Response.client_uuid,
            Response.received_at, Participant.design_hash,
        ))
        .where(Participant.study_id == study_id)
        .order_by(Participant.id, Trial.index)
    )


def _trials_row(r: Any, who: Callable[[str | None, str], str]) -> dict[str, Any]:
    gen = r.generation or {}
    return {
        "study": r.slug, "task": r.task, "participant": who(r.external_id, r.public_id),
        "participant_status": r.status, "condition": r.name, "trial_index": r.index,
        "trial_kind": r.kind, "stimulus_id": r.stimulus_key, "source": r.source,
        "model": r.model_name, "class_label": r.class_label, "exemplar_id": r.exemplar_id,
        "guidance": gen.get("guidance"), "sampler": gen.get("sampler"), "steps": gen.get("steps"),
        "seed": gen.get("seed"), "answer": r.answer,
        "correct": None if r.correct is None else int(r.correct), "confidence": r.confidence,
        "rt_ms": r.rt_ms, "exposure_ms": r.exposure_ms, "n_clicks": r.n_clicks,
        "client_uuid": r.client_uuid, "received_at": _iso(r.received_at),
        "design_hash": r.design_hash,
    }


def _clicks_query(study_id: int) -> Select:
    return (
        clicks_from(select(
            Study.slug, Participant.external_id, Participant.public_id, Trial.index,
            Stimulus.stimulus_key, Click.order, Click.x, Click.y, Click.t_ms, Click.stroke,
        ))
        .where(Participant.study_id == study_id)
        .order_by(Participant.id, Trial.index, Click.order)
    )


def _clicks_row(r: Any, who: Callable[[str | None, str], str]) -> dict[str, Any]:
    return {
        "study": r.slug, "participant": who(r.external_id, r.public_id), "trial_index": r.index,
        "stimulus_id": r.stimulus_key, "order": r.order, "x": r.x, "y": r.y, "t_ms": r.t_ms,
        "stroke": r.stroke,
    }


def _events_query(study_id: int) -> Select:
    return (
        events_from(select(
            Study.slug, Participant.external_id, Participant.public_id, Trial.index,
            BrowserEvent.kind, BrowserEvent.t_ms, BrowserEvent.detail, BrowserEvent.received_at,
        ))
        .where(Participant.study_id == study_id)
        .order_by(Participant.id, BrowserEvent.id)
    )


def _events_row(r: Any, who: Callable[[str | None, str], str]) -> dict[str, Any]:
    return {
        "study": r.slug, "participant": who(r.external_id, r.public_id), "trial_index": r.index,
        "kind": r.kind, "t_ms": r.t_ms,
        "detail": json.dumps(r.detail or {}, sort_keys=True, separators=(",", ":")),
        "received_at": _iso(r.received_at),
    }


_TABLE_SQL = {
    "trials": (_trials_query, _trials_row),
    "clicks": (_clicks_query, _clicks_row),
    "events": (_events_query, _events_row),
}


def find_study(db: Session, slug: str) -> Study:
    study = db.scalar(select(Study).where(Study.slug == slug))
    if study is None:
        raise ExportError("study", f"no study with slug {slug!r}")
    return study


def iter_batches(
    db: Session,
    study: Study,
    table: str,
    secret_key: str,
    *,
    pseudonymise: bool = True,
    batch_size: int = DEFAULT_BATCH,
) -> Iterator[list[dict[str, Any]]]:
    """Rows of `table` for `study` as lists of at most `batch_size` dicts (columns of COLUMNS)."""
    if table not in TABLES:
        raise ExportError("table", f"must be one of {', '.join(TABLES)}")
    if batch_size < 1:
        raise ExportError("batch_size", "must be at least 1")
    make_query, make_row = _TABLE_SQL[table]
    cache: dict[str, str] = {}

    def who(external: str | None, public_id: str) -> str:
        ident = _identity(external, public_id)
        if not pseudonymise:
            return ident
        if ident not in cache:
            if len(cache) > 100_000:  # bound the memo as well
                cache.clear()
            cache[ident] = pseudonym(ident, secret_key)
        return cache[ident]

    result = db.execute(make_query(study.id).execution_options(yield_per=batch_size))
    try:
        for partition in result.partitions(batch_size):
            yield [make_row(r, who) for r in partition]
    finally:
        result.close()


# ---------------------------------------------------------------- writers


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # shortest exact round trip
    return value


def csv_chunks(table: str, batches: Iterator[list[dict[str, Any]]]) -> Iterator[str]:
    """CSV text of `table`: the header, then one chunk per batch (for streamed responses)."""
    names = [c.name for c in COLUMNS[table]]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(names)
    yield buf.getvalue()
    for batch in batches:
        buf.seek(0)
        buf.truncate()
        writer.writerows([_csv_cell(row[n]) for n in names] for row in batch)
        yield buf.getvalue()


def write_csv(table: str, batches: Iterator[list[dict[str, Any]]], fh: TextIO) -> int:
    """Write `table` as CSV to `fh`; returns the number of data rows."""
    seen = [0]

    def count(k: int) -> None:
        seen[0] += k

    for chunk in csv_chunks(table, _counting(batches, count)):
        fh.write(chunk)
    return seen[0]


def _counting(batches: Iterator[list[dict[str, Any]]], on_batch: Callable[[int], None]) -> Iterator[list[dict[str, Any]]]:
    for batch in batches:
        on_batch(len(batch))
        yield batch


def arrow_schema(table: str) -> pa.Schema:
    return pa.schema([pa.field(c.name, _ARROW[c.type]) for c in COLUMNS[table]])


def write_parquet(table: str, batches: Iterator[list[dict[str, Any]]], where: str | Path | Any) -> int:
    """Write `table` as Parquet (one row group per batch); returns the number of rows."""
    schema = arrow_schema(table)
    n = 0
    with pq.ParquetWriter(where, schema) as writer:
        for batch in batches:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            n += len(batch)
        if n == 0:
            writer.write_table(schema.empty_table())
    return n


def staircase_settings(study: Study, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The staircase settings the server runs with `settings` (a design version's; default the
    study's own): `staircase` for participants without a condition, `conditions` {name:
    {"staircase": ...}} with each condition's overrides merged over them as the server merges
    them (study.participation.rules.merged_settings), every key filled in (docs/formats.md
    section 3)."""
    base = study.settings if settings is None else settings
    return {
        "staircase": asdict(merged_settings(base, None).staircase),
        "conditions": {
            c.name: {"staircase": asdict(merged_settings(base, c.settings).staircase)}
            for c in sorted(study.conditions, key=lambda c: c.name)
        },
    }


def data_dictionary(study: Study, *, pseudonymise: bool, fmt: str, counts: dict[str, int] | None = None) -> dict[str, Any]:
    """The JSON data dictionary: every column of every table, its type and meaning, the
    staircase settings of the study and its conditions, and of each design version its
    participants started under: the version's settings and the staircases it ran with (an edited
    study serves earlier participants their version's, so the analysis replays each
    participant's staircase with its version's)."""
    return {
        "study": study.slug,
        "title": study.title,
        "task": study.task,
        "format": fmt,
        "pseudonymised": pseudonymise,
        "pseudonym": "HMAC-SHA256(SECRET_KEY, 'participant:' + external id), first 16 hex characters" if pseudonymise else "raw external id (PROLIFIC_PID / workerId; public id for direct participants)",
        "exported_at": _iso(dt.datetime.now(dt.UTC)),
        "rows": counts or {},
        "tables": {
            table: {
                "file": f"{table}.{fmt}",
                "columns": [{"name": c.name, "type": c.type, "description": c.description} for c in cols],
            }
            for table, cols in COLUMNS.items()
        },
        **staircase_settings(study),
        "design_versions": {
            digest: {**version, **staircase_settings(study, version["settings"])}
            for digest, version in design.study_versions(object_session(study), study.id).items()
        },
    }


def export_study(
    db: Session,
    slug: str,
    out_dir: str | Path,
    *,
    fmt: str,
    secret_key: str,
    pseudonymise: bool = True,
    batch_size: int = DEFAULT_BATCH,
) -> dict[str, int]:
    """Write trials, clicks, events and data_dictionary.json into `out_dir`; returns row counts.

    The other format's files of an earlier export into the same folder are removed, so the
    folder holds one export."""
    if fmt not in FORMATS:
        raise ExportError("format", f"must be one of {', '.join(FORMATS)}")
    study = find_study(db, slug)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for table in TABLES:
        batches = iter_batches(db, study, table, secret_key, pseudonymise=pseudonymise, batch_size=batch_size)
        target = out / f"{table}.{fmt}"
        if fmt == "csv":
            with target.open("w", newline="", encoding="utf-8") as fh:
                counts[table] = write_csv(table, batches, fh)
        else:
            counts[table] = write_parquet(table, batches, target)
    for table in TABLES:
        for other in FORMATS:
            if other != fmt:
                (out / f"{table}.{other}").unlink(missing_ok=True)
    dictionary = data_dictionary(study, pseudonymise=pseudonymise, fmt=fmt, counts=counts)
    (out / "data_dictionary.json").write_text(json.dumps(dictionary, indent=2) + "\n")
    return counts

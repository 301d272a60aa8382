"""Read the study export (docs/formats.md §3) and model maps (§4) into tidy DataFrames.

Analysis reads these documented columns and nothing else of the study: exported CSV/Parquet
files, or SQL relations (tables or views) holding the same columns; and the staircase settings
the study ran with, from data_dictionary.json or the study database's study, condition and
design-version rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis import realfake
from analysis.staircase import StaircaseRule

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

TRIAL_COLUMNS: tuple[str, ...] = (
    "study", "task", "participant", "participant_status", "condition", "trial_index",
    "trial_kind", "stimulus_id", "source", "model", "class_label", "exemplar_id", "guidance",
    "sampler", "steps", "seed", "answer", "correct", "confidence", "rt_ms", "exposure_ms",
    "n_clicks", "client_uuid", "received_at",
)
CLICK_COLUMNS: tuple[str, ...] = (
    "study", "participant", "trial_index", "stimulus_id", "order", "x", "y", "t_ms", "stroke",
)
EVENT_COLUMNS: tuple[str, ...] = (
    "study", "participant", "trial_index", "kind", "t_ms", "detail", "received_at",
)
COLUMNS = {"trials": TRIAL_COLUMNS, "clicks": CLICK_COLUMNS, "events": EVENT_COLUMNS}
# Text columns read when a table has them and empty otherwise: the trials' design_hash (the
# design version each participant started under) is absent from exports made before versions.
OPTIONAL_COLUMNS = {"trials": ("design_hash",), "clicks": (), "events": ()}

_STRING_COLUMNS = {
    "study", "task", "participant", "participant_status", "condition", "trial_kind",
    "stimulus_id", "source", "model", "class_label", "exemplar_id", "sampler", "answer",
    "client_uuid", "received_at", "kind", "detail",
}
_FLOAT_COLUMNS = {
    "guidance", "correct", "confidence", "rt_ms", "exposure_ms", "x", "y", "t_ms", "steps", "seed",
}
_INT_COLUMNS = {"trial_index", "n_clicks", "order", "stroke"}


_NULLABLE = {("events", "trial_index")}  # empty outside trials: kept as float with NaN

_DB_ORDER = {  # a deterministic row order for SQL reads (files keep their own order)
    "trials": ("study", "participant", "trial_index"),
    "clicks": ("study", "participant", "trial_index", "order"),
    "events": ("study", "participant", "t_ms"),
}


class AnalysisInputError(ValueError):
    """An input file, column or value the analysis needs is missing or malformed."""


VOCABULARY: dict[tuple[str, str], tuple[str, ...]] = {  # the values a column may take (§3)
    ("trials", "task"): ("clickme", "realfake"),
    ("trials", "trial_kind"): ("practice", "main", "catch"),
    ("trials", "source"): ("real", "model"),
    ("trials", "answer"): ("", "real", "fake"),
}
_IDS = {"trials": ("participant", "stimulus_id"), "clicks": ("participant",),
        "events": ("participant",)}


@dataclass
class Export:
    """The three export tables, where they came from (path -> sha256), the repairs made when
    they were loaded (one sentence each, see `check_export`) and the staircase settings the
    study ran: {(study, condition): rule}, condition "" for the study's own settings (those of
    participants without a condition), None where the staircase was off, and {(study,
    condition, design_hash): rule} for each design version the data dictionary records; empty
    when the export records none (see `staircase_settings`)."""

    trials: pd.DataFrame
    clicks: pd.DataFrame
    events: pd.DataFrame
    sources: dict[str, str] = field(default_factory=dict)
    repairs: list[str] = field(default_factory=list)
    staircase: dict[tuple[str, ...], StaircaseRule | None] = field(default_factory=dict)


def _staircase_rule(raw: object, where: str) -> StaircaseRule | None:
    """One staircase settings object (§3) as a rule; None when it is not enabled."""
    if not isinstance(raw, dict):
        raise AnalysisInputError(f"{where}: must be a JSON object, not {raw!r}")
    if raw.get("enabled", False) is not True:  # the study app's default: no staircase
        return None
    try:
        return StaircaseRule.from_dict(raw)
    except ValueError as exc:
        raise AnalysisInputError(f"{where}: {exc}") from exc


def _staircases(entry: dict, study: str, where: str, version: tuple[str, ...] = ()
                ) -> dict[tuple[str, ...], StaircaseRule | None]:
    """The rules of one {"staircase": ..., "conditions": {name: {"staircase": ...}}} object,
    keyed (study, condition, *version)."""
    out = {(study, "", *version): _staircase_rule(entry["staircase"], f"{where}staircase")}
    conditions = entry.get("conditions", {})
    if not isinstance(conditions, dict):
        raise AnalysisInputError(f"{where}conditions: must be a JSON object")
    for name, cond in conditions.items():
        field_name = f"{where}conditions.{name}.staircase"
        if not isinstance(cond, dict) or "staircase" not in cond:
            raise AnalysisInputError(f"{field_name}: missing")
        out[(study, str(name), *version)] = _staircase_rule(cond["staircase"], field_name)
    return out


def staircase_settings(dictionary: dict, origin: str = "") -> dict[tuple[str, ...],
                                                                 StaircaseRule | None]:
    """The staircase settings a data dictionary (§3) records, as in `Export.staircase`: the
    study's now, {(study, condition): rule}, and each design version's, {(study, condition,
    design_hash): rule}; empty when it records none."""
    where = f"{origin}: " if origin else ""
    if "staircase" not in dictionary:
        return {}
    study = str(dictionary.get("study", ""))
    out = _staircases(dictionary, study, f"{where}field ")
    versions = dictionary.get("design_versions", {})
    if not isinstance(versions, dict):
        raise AnalysisInputError(f"{where}field design_versions: must be a JSON object")
    for digest, version in versions.items():
        if isinstance(version, dict) and "staircase" in version:  # older exports list settings only
            out.update(_staircases(version, study, f"{where}field design_versions.{digest}.", (str(digest),)))
    return out


def find_table(directory: Path, name: str) -> Path:
    """The export file `name.csv` or `name.parquet` in `directory`.

    When both are there, the one in the format data_dictionary.json names (the study export
    writes the dictionary last, so it names the latest export), else the newer file. The report
    lists the file it read among its inputs."""
    found = [directory / f"{name}{suffix}" for suffix in (".csv", ".parquet")]
    found = [path for path in found if path.exists()]
    if not found:
        raise AnalysisInputError(f"missing export file {directory / name}.csv (or .parquet)")
    if len(found) == 1:
        return found[0]
    try:
        fmt = json.loads((directory / "data_dictionary.json").read_text()).get("format")
    except (OSError, ValueError, AttributeError):
        fmt = None
    named = [path for path in found if path.suffix == f".{fmt}"]
    return named[0] if named else max(found, key=lambda path: path.stat().st_mtime_ns)


def read_table(path: Path) -> pd.DataFrame:
    """Read one CSV or Parquet file without guessing types (types are set by `tidy`)."""
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (OSError, ValueError) as exc:
        raise AnalysisInputError(f"cannot read {path}: {exc}") from exc


def tidy(df: pd.DataFrame, name: str, origin: str = "") -> pd.DataFrame:
    """Check the documented columns of table `name` and give each its type; the table's
    OPTIONAL_COLUMNS are kept as text (empty when the table lacks them), the rest dropped.

    Strings: empty for missing; numeric columns: float with NaN for missing (counts as int64,
    except the events' trial_index, empty outside trials, kept as float).
    Raises AnalysisInputError naming the table, the origin and every missing column or bad value.
    """
    required = COLUMNS[name]
    missing = [c for c in required if c not in df.columns]
    where = f" in {origin}" if origin else ""
    if missing:
        raise AnalysisInputError(f"{name}{where}: missing column(s) {', '.join(missing)}")
    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    for col in required:
        values = df[col].reset_index(drop=True)
        if col in _STRING_COLUMNS:
            if values.dtype != object and pd.api.types.is_string_dtype(values):
                out[col] = values.fillna("")  # already text (CSV read as str, Parquet strings)
            else:
                out[col] = values.astype("string").fillna("").astype(str)
        elif col in _FLOAT_COLUMNS or col in _INT_COLUMNS:
            if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
                # nullable Int64/boolean from Parquet: NA becomes NaN
                num = pd.Series(values.astype("Float64").to_numpy(np.float64, na_value=np.nan))
            elif values.dtype == object or pd.api.types.is_string_dtype(values):
                values = values.replace({"True": "1", "False": "0", "true": "1", "false": "0"})
                num = pd.to_numeric(values, errors="coerce")
                bad = num.isna() & values.notna() & (values.astype("string").fillna("") != "")
                if bad.any():
                    row = int(np.flatnonzero(bad.to_numpy())[0])
                    raise AnalysisInputError(f"{name}{where}: column {col} has a non-numeric "
                                             f"value {values[row]!r} (row {row})")
            else:
                raise AnalysisInputError(f"{name}{where}: column {col} must be numeric")
            if col in _INT_COLUMNS and (name, col) not in _NULLABLE:
                if num.isna().any():
                    raise AnalysisInputError(f"{name}{where}: column {col} has empty values")
                out[col] = num.astype(np.int64)
            else:
                out[col] = num.astype(np.float64)
    for col in OPTIONAL_COLUMNS[name]:
        out[col] = (df[col].reset_index(drop=True).astype("string").fillna("").astype(str)
                    if col in df.columns else "")
    if name == "clicks" and len(out):
        outside = ~out["x"].between(0, 1) | ~out["y"].between(0, 1)
        if outside.any():
            raise AnalysisInputError(f"clicks{where}: x and y must lie in [0, 1]")
    return out


def _n(count: int, noun: str) -> str:
    """'1 value', '3 values'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _rows(mask: np.ndarray | pd.Series, index: pd.Index | None = None, limit: int = 5) -> str:
    """'rows 3, 17 and 4 more': data rows (0-based, as read) where `mask` is True."""
    pos = np.flatnonzero(np.asarray(mask))
    rows = (index[pos] if index is not None else pos).tolist()
    text = ", ".join(str(r) for r in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"row{'s' if len(rows) > 1 else ''} {text}{more}"


def check_export(trials: pd.DataFrame, clicks: pd.DataFrame, events: pd.DataFrame,
                 origin: str = "") -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    """Check tidy export tables against the rules the study guarantees, repairing what can be
    repaired without guessing and refusing the rest.

    Repairs (returned as sentences, one per kind, for the report): a vocabulary value in another
    letter case or with spaces ("Fake " -> "fake"); exact duplicate trial or click rows (copies
    of one row, kept once); clicks whose (participant, trial_index) has no trial (dropped: no
    stimulus to put them on). Errors (AnalysisInputError, one line naming the table, column and
    rows): an empty participant or stimulus id; a value outside the column's vocabulary; a
    client_uuid or a (study, participant, trial_index) on two rows that differ (two answers to
    one trial); a `correct` that contradicts `answer` and `source`; a click whose stimulus_id
    is not its trial's. Row numbers are 0-based data rows as read.
    """
    where = f" in {origin}" if origin else ""
    repairs: list[str] = []
    tables = {"trials": trials.copy(), "clicks": clicks.copy(), "events": events.copy()}
    for name, cols in _IDS.items():  # empty ids first: every later key uses them
        for col in cols:
            empty = tables[name][col].str.strip() == ""
            if empty.any():
                raise AnalysisInputError(f"{name}{where}: column {col} is empty on "
                                         f"{_rows(empty)}")
    t = tables["trials"]
    for (name, col), allowed in VOCABULARY.items():
        values = t[col]
        norm = values.str.strip().str.lower()
        bad = ~norm.isin(allowed)
        if bad.any():
            first = values[bad].iloc[0]
            raise AnalysisInputError(
                f"{name}{where}: column {col} has {first!r} on {_rows(bad)}; allowed: "
                + ", ".join(repr(v) for v in allowed))
        changed = norm != values
        if changed.any():
            examples = sorted({f"{a!r} -> {b!r}" for a, b in
                               zip(values[changed], norm[changed], strict=True)})[:3]
            repairs.append(f"{name}: column {col}: {_n(int(changed.sum()), 'value')} in "
                           f"another letter case or with spaces set to the documented form "
                           f"({', '.join(examples)})")
            t[col] = norm
    for name in ("trials", "clicks"):
        df = tables[name]
        dup = df.duplicated(keep="first").to_numpy()
        if dup.any():
            repairs.append(f"{name}: {_n(int(dup.sum()), 'exact duplicate row')} dropped, the "
                           f"first copy of each kept ({_rows(dup, df.index)})")
            tables[name] = df.loc[~dup]
    t = tables["trials"]
    for keys, what in ((["client_uuid"], "client_uuid"),
                       (["study", "participant", "trial_index"], "(study, participant, "
                        "trial_index)")):
        sel = t[keys[0]] != "" if keys == ["client_uuid"] else np.ones(len(t), bool)
        clash = t.duplicated(keys, keep=False).to_numpy() & np.asarray(sel)
        if clash.any():
            first = t.loc[clash, keys].iloc[0].tolist()
            raise AnalysisInputError(
                f"trials{where}: {what} {', '.join(map(str, first))} repeats on rows that "
                f"differ ({_rows(clash, t.index)}); the study stores one response per trial, "
                "so these are two answers to one trial: remove the wrong rows")
    judged = ((t["task"] == "realfake") & t["answer"].isin(realfake.ANSWERS)
              & t["correct"].notna())
    right = realfake.is_right(t["answer"], t["source"])
    wrong = judged & (t["correct"] != right.astype(float))
    if wrong.any():
        raise AnalysisInputError(
            f"trials{where}: column correct contradicts answer and source on "
            f"{_rows(wrong, t.index)} (correct is 1 when the answer is fake for a model "
            "stimulus or real for a real one)")
    c = tables["clicks"]
    if len(c):
        key_t = pd.MultiIndex.from_frame(t[["participant", "trial_index"]])
        key_c = pd.MultiIndex.from_frame(c[["participant", "trial_index"]])
        pos = key_t.get_indexer(key_c)
        orphan = pos < 0
        if orphan.any():
            pairs = c.loc[orphan, ["participant", "trial_index"]].drop_duplicates()
            shown = ", ".join(f"({p}, {i})" for p, i in pairs.head(3).itertuples(index=False))
            repairs.append(f"clicks: {_n(int(orphan.sum()), 'click')} on "
                           f"{_n(len(pairs), '(participant, trial_index) pair')} with no trial "
                           "dropped "
                           f"({shown}{', ...' if len(pairs) > 3 else ''})")
        matched = ~orphan & (c["stimulus_id"].to_numpy() != "")
        other = np.zeros(len(c), bool)
        other[matched] = (c["stimulus_id"].to_numpy()[matched]
                          != t["stimulus_id"].to_numpy()[pos[matched]])
        if other.any():
            raise AnalysisInputError(
                f"clicks{where}: column stimulus_id differs from the stimulus_id of the "
                f"click's trial on {_rows(other, c.index)}; are trials and clicks from the "
                "same export?")
        tables["clicks"] = c.loc[~orphan]
    out = [tables[n].reset_index(drop=True) for n in ("trials", "clicks", "events")]
    return out[0], out[1], out[2], repairs


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (recorded in the report's inputs)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_export(directory: str | Path) -> Export:
    """Load trials, clicks and events from an export folder (§3); events may be absent.

    The tables are checked and repaired by `check_export`; the repairs are in `repairs`. The
    staircase settings come from data_dictionary.json when the folder has one."""
    directory = Path(directory)
    if not directory.is_dir():
        raise AnalysisInputError(f"export folder {directory} does not exist")
    tables: dict[str, pd.DataFrame] = {}
    sources: dict[str, str] = {}
    for name in ("trials", "clicks", "events"):
        try:
            path = find_table(directory, name)
        except AnalysisInputError:
            if name == "trials":
                raise
            tables[name] = pd.DataFrame({c: [] for c in COLUMNS[name]})
            tables[name] = tidy(tables[name], name)
            continue
        tables[name] = tidy(read_table(path), name, str(path))
        sources[str(path)] = sha256_file(path)
    settings: dict[tuple[str, str], StaircaseRule | None] = {}
    path = directory / "data_dictionary.json"
    if path.exists():
        try:
            dictionary = json.loads(path.read_text())
        except ValueError as exc:
            raise AnalysisInputError(f"{path}: not valid JSON ({exc})") from exc
        if not isinstance(dictionary, dict):
            raise AnalysisInputError(f"{path}: must be a JSON object")
        settings = staircase_settings(dictionary, str(path))
        sources[str(path)] = sha256_file(path)
    trials, clicks, events, repairs = check_export(tables["trials"], tables["clicks"],
                                                   tables["events"], str(directory))
    return Export(trials, clicks, events, sources, repairs, settings)


def load_database(
    url: str,
    study: str | None = None,
    relations: dict[str, str] | None = None,
) -> Export:
    """Load the export tables from SQL relations that hold the §3 columns (and the optional
    ones, e.g. the trials' design_hash, when they have them).

    `relations` maps trials/clicks/events to table or view names (default `export_trials`,
    `export_clicks`, `export_events`); `study` keeps one study's rows. In a study database
    the staircase settings come from the `settings` of its `studies` and `conditions` rows
    (see `database_staircase`); a database without those tables records none.
    """
    import sqlalchemy as sa

    names = {"trials": "export_trials", "clicks": "export_clicks", "events": "export_events"}
    names.update(relations or {})
    engine = sa.create_engine(url)
    tables: dict[str, pd.DataFrame] = {}
    try:
        with engine.connect() as conn:
            present = set(sa.inspect(conn).get_table_names()) | set(
                sa.inspect(conn).get_view_names()
            )
            for name, relation in names.items():
                if relation not in present:
                    if name == "trials":
                        raise AnalysisInputError(f"database {engine.url!r}: no relation {relation}")
                    tables[name] = tidy(pd.DataFrame({c: [] for c in COLUMNS[name]}), name)
                    continue
                have = {c["name"] for c in sa.inspect(conn).get_columns(relation)}
                read = [*COLUMNS[name], *(c for c in OPTIONAL_COLUMNS[name] if c in have)]
                query = sa.select(sa.table(relation, *[sa.column(c) for c in read]))
                if study is not None:
                    query = query.where(sa.column("study") == study)
                query = query.order_by(*[sa.column(c) for c in _DB_ORDER[name]])
                raw = pd.read_sql_query(query, conn)
                tables[name] = tidy(raw, name, f"{engine.url!r}:{relation}")
            settings = ({} if not {"studies", "conditions"} <= present
                        else database_staircase(conn, study))
    except sa.exc.SQLAlchemyError as exc:
        raise AnalysisInputError(f"cannot read database: {exc}") from exc
    finally:
        engine.dispose()
    trials, clicks, events, repairs = check_export(tables["trials"], tables["clicks"],
                                                   tables["events"], "the database")
    return Export(trials, clicks, events, {url: "database"}, repairs, settings)


def database_staircase(conn: Connection, study: str | None = None
                       ) -> dict[tuple[str, ...], StaircaseRule | None]:
    """The staircase settings a study database holds, as in `Export.staircase`.

    `conn`: an open SQLAlchemy connection to a database with the study app's `studies` (id,
    slug, settings) and `conditions` (study_id, name, settings) tables, and, when it has them,
    `participants` (study_id, design_hash) and `design_versions` (hash, settings). A
    condition's staircase settings are overrides merged key by key over its study's (or its
    design version's), as the app merges them; keys set in neither take the app's defaults.
    """
    import sqlalchemy as sa

    studies = sa.table("studies", sa.column("id"), sa.column("slug"), sa.column("settings"))
    conds = sa.table("conditions", sa.column("study_id"), sa.column("name"),
                     sa.column("settings"))

    def staircase_of(value: object, where: str) -> dict:
        settings = json.loads(value) if isinstance(value, str) else (value or {})
        raw = settings.get("staircase", {}) if isinstance(settings, dict) else None
        if not isinstance(raw, dict):
            raise AnalysisInputError(f"{where}: staircase must be a JSON object")
        return raw

    chosen = sa.select(studies.c.id, studies.c.slug, studies.c.settings)
    if study is not None:
        chosen = chosen.where(studies.c.slug == study)
    rows = conn.execute(chosen).all()
    ids = [study_id for study_id, _slug, _settings in rows]  # only the chosen studies' rows are read
    overrides: dict[int, list[tuple[str, dict]]] = {}
    for study_id, name, settings in conn.execute(
            sa.select(conds.c.study_id, conds.c.name, conds.c.settings).where(conds.c.study_id.in_(ids))):
        where = f"conditions {name!r} settings"
        overrides.setdefault(study_id, []).append((name, staircase_of(settings, where)))
    tables = set(sa.inspect(conn).get_table_names())
    versions: dict[int, list[tuple[str, object]]] = {}
    if {"participants", "design_versions"} <= tables:
        parts = sa.table("participants", sa.column("study_id"), sa.column("design_hash"))
        dv = sa.table("design_versions", sa.column("hash"), sa.column("settings"))
        # distinct (study, version) pairs first: PostgreSQL's json type has no equality for DISTINCT
        pairs = (sa.select(parts.c.study_id, parts.c.design_hash).where(parts.c.study_id.in_(ids))
                 .distinct().subquery())
        for study_id, digest, settings in conn.execute(
                sa.select(pairs.c.study_id, dv.c.hash, dv.c.settings)
                .select_from(pairs.join(dv, dv.c.hash == pairs.c.design_hash))):
            versions.setdefault(study_id, []).append((digest, settings))

    out: dict[tuple[str, ...], StaircaseRule | None] = {}
    for study_id, slug, settings in rows:
        sets = [((), f"studies {slug!r} settings", settings)] + [
            ((digest,), f"design version {digest} settings", v) for digest, v in versions.get(study_id, [])]
        for version, where, value in sets:
            base = staircase_of(value, where)
            out[(slug, "", *version)] = _staircase_rule(base, f"{where}.staircase")
            for name, override in overrides.get(study_id, []):
                merged = {**base, **override}
                out[(slug, name, *version)] = _staircase_rule(
                    merged, f"conditions {name!r} of study {slug!r} over the {where}.staircase")
    return out


def load_maps(directory: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """Model maps (§4): {method: {stimulus_id: (H, W) float32 non-negative}}.

    Each sub-folder with an index.json is one method; the index lists the stimulus ids.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise AnalysisInputError(f"maps folder {directory} does not exist")
    out: dict[str, dict[str, np.ndarray]] = {}
    for index_path in sorted(directory.glob("*/index.json")):
        try:
            index = json.loads(index_path.read_text())
        except ValueError as exc:
            raise AnalysisInputError(f"{index_path}: not valid JSON ({exc})") from exc
        method = str(index.get("method") or index_path.parent.name)
        ids = index.get("stimulus_ids")
        if not isinstance(ids, list):
            raise AnalysisInputError(f"{index_path}: missing field stimulus_ids (a list)")
        maps: dict[str, np.ndarray] = {}
        for sid in ids:
            path = index_path.parent / f"{sid}.npy"
            if not path.exists():
                raise AnalysisInputError(f"missing map file {path}")
            arr = np.load(path)
            if arr.ndim != 2 or not np.isfinite(arr).all() or (arr < 0).any():
                raise AnalysisInputError(f"{path}: a map must be a finite non-negative (H, W) array")
            maps[str(sid)] = arr.astype(np.float32)
        out[method] = maps
    if not out:
        raise AnalysisInputError(f"maps folder {directory}: no METHOD/index.json found")
    return out


def map_sources(directory: str | Path) -> dict[str, str]:
    """path -> sha256 of every index.json and .npy under a maps folder (for the report)."""
    directory = Path(directory)
    return {str(p): sha256_file(p) for p in sorted(directory.glob("*/*")) if p.is_file()}


def stimuli_table(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per stimulus with its manifest metadata, taken from the trials table."""
    cols = ["stimulus_id", "source", "model", "class_label", "exemplar_id", "guidance",
            "sampler", "steps", "seed"]
    return trials[cols].drop_duplicates("stimulus_id").reset_index(drop=True)


def join_stimuli(df: pd.DataFrame, stimuli: pd.DataFrame) -> pd.DataFrame:
    """Left-join stimulus metadata onto any table keyed by stimulus_id (columns kept once)."""
    extra = [c for c in stimuli.columns if c == "stimulus_id" or c not in df.columns]
    return df.merge(stimuli[extra], on="stimulus_id", how="left")

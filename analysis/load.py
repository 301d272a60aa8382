"""Read the study export (docs/formats.md §3) and model maps (§4) into tidy DataFrames.

Analysis reads these documented columns and nothing else of the study: exported CSV/Parquet
files, or SQL relations (tables or views) holding the same columns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

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


@dataclass
class Export:
    """The three export tables and where they came from (path -> sha256)."""

    trials: pd.DataFrame
    clicks: pd.DataFrame
    events: pd.DataFrame
    sources: dict[str, str] = field(default_factory=dict)


def find_table(directory: Path, name: str) -> Path:
    """The export file `name.parquet` or `name.csv` in `directory` (Parquet preferred)."""
    for suffix in (".parquet", ".csv"):
        path = directory / f"{name}{suffix}"
        if path.exists():
            return path
    raise AnalysisInputError(f"missing export file {directory / name}.csv (or .parquet)")


def read_table(path: Path) -> pd.DataFrame:
    """Read one CSV or Parquet file without guessing types (types are set by `tidy`)."""
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (OSError, ValueError) as exc:
        raise AnalysisInputError(f"cannot read {path}: {exc}") from exc


def tidy(df: pd.DataFrame, name: str, origin: str = "") -> pd.DataFrame:
    """Check the documented columns of table `name` and give each its type.

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
    if name == "clicks" and len(out):
        outside = ~out["x"].between(0, 1) | ~out["y"].between(0, 1)
        if outside.any():
            raise AnalysisInputError(f"clicks{where}: x and y must lie in [0, 1]")
    return out


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (recorded in the report's inputs)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_export(directory: str | Path) -> Export:
    """Load trials, clicks and events from an export folder (§3); events may be absent."""
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
    return Export(tables["trials"], tables["clicks"], tables["events"], sources)


def load_database(
    url: str,
    study: str | None = None,
    relations: dict[str, str] | None = None,
) -> Export:
    """Load the export tables from SQL relations that hold exactly the §3 columns.

    `relations` maps trials/clicks/events to table or view names (default `export_trials`,
    `export_clicks`, `export_events`); `study` keeps one study's rows.
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
                query = sa.select(sa.table(relation, *[sa.column(c) for c in COLUMNS[name]]))
                if study is not None:
                    query = query.where(sa.column("study") == study)
                query = query.order_by(*[sa.column(c) for c in _DB_ORDER[name]])
                raw = pd.read_sql_query(query, conn)
                tables[name] = tidy(raw, name, f"{engine.url!r}:{relation}")
    except sa.exc.SQLAlchemyError as exc:
        raise AnalysisInputError(f"cannot read database: {exc}") from exc
    finally:
        engine.dispose()
    return Export(tables["trials"], tables["clicks"], tables["events"], {url: "database"})


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

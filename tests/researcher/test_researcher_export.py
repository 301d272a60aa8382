"""Export (docs/formats.md section 3): columns, one row per trial / click, pseudonyms, streaming."""

from __future__ import annotations

import csv
import inspect
import io
import json

import pyarrow.parquet as pq
import pytest
from researcher_helpers import create_demo_study, make_app, populate

from study import db, export
from study.tables import Study

DOC_TRIAL_COLUMNS = (
    "study task participant participant_status condition trial_index trial_kind stimulus_id source "
    "model class_label exemplar_id guidance sampler steps seed answer correct confidence rt_ms "
    "exposure_ms n_clicks client_uuid received_at design_hash"
).split()
DOC_CLICK_COLUMNS = "study participant trial_index stimulus_id order x y t_ms stroke".split()
DOC_EVENT_COLUMNS = "study participant trial_index kind t_ms detail received_at".split()


def test_columns_are_exactly_the_documented_ones():
    assert [c.name for c in export.COLUMNS["trials"]] == DOC_TRIAL_COLUMNS
    assert [c.name for c in export.COLUMNS["clicks"]] == DOC_CLICK_COLUMNS
    assert [c.name for c in export.COLUMNS["events"]] == DOC_EVENT_COLUMNS


@pytest.fixture
def filled(app, stimuli_dir):
    sid = create_demo_study(app, stimuli_dir(2, 2))
    inserted = populate(app, sid, 4, 6, clicks_each=3, events_each=2)
    return sid, inserted


def _read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_files_match_inserted_rows(app, filled, tmp_path, fmt):
    sid, inserted = filled
    out = tmp_path / "out"
    with app.app_context():
        counts = export.export_study(db.session(), "demo", out, fmt=fmt, secret_key="test-secret-key", batch_size=7)
    assert counts == {"trials": 24, "clicks": 72, "events": 8}
    if fmt == "csv":
        trials, clicks, events = (_read_csv(out / f"{t}.csv") for t in export.TABLES)
    else:
        trials, clicks, events = (pq.read_table(out / f"{t}.parquet").to_pylist() for t in export.TABLES)
        assert pq.read_table(out / "trials.parquet").schema.names == DOC_TRIAL_COLUMNS
        assert str(pq.read_table(out / "clicks.parquet").schema.field("x").type) == "double"
    assert list(trials[0]) == DOC_TRIAL_COLUMNS
    assert list(clicks[0]) == DOC_CLICK_COLUMNS and list(events[0]) == DOC_EVENT_COLUMNS
    assert len(trials) == len(inserted["responses"]) and len(clicks) == inserted["clicks"]
    expected = {(r["participant"], r["trial_index"]): r for r in inserted["responses"]}
    pseudonyms = {export.pseudonym(p, "test-secret-key"): p for p in inserted["participants"]}
    for row in trials:
        raw = pseudonyms[row["participant"]]  # pseudonymised by default
        want = expected[(raw, int(row["trial_index"]))]
        assert row["stimulus_id"] == want["stimulus_id"]
        assert row["answer"] == want["answer"]
        assert int(row["correct"]) == int(want["correct"])
        assert float(row["rt_ms"]) == want["rt_ms"]
        assert row["participant_status"] == want["status"]
        assert row["trial_kind"] == want["kind"]
        assert row["study"] == "demo" and row["task"] == "realfake" and row["condition"] == "default"
        assert row["received_at"] == "2026-01-01T12:00:00.000Z"
        if row["stimulus_id"].startswith("cfgdm"):
            assert float(row["guidance"]) == 1.5 and int(row["steps"]) == 50 and row["model"] == "cfgdm"
        else:
            assert row["model"] in ("", None) and row["guidance"] in ("", None)
    assert all(len(r["participant"]) == 16 for r in trials)
    assert not any(p in (out / f"trials.{fmt}").read_bytes().decode("latin-1") for p in inserted["participants"])
    for row in clicks:
        assert 0 <= float(row["x"]) <= 1 and 0 <= float(row["y"]) <= 1
    orders = [(r["participant"], int(r["trial_index"]), int(r["order"])) for r in clicks]
    assert len(set(orders)) == len(orders)
    assert json.loads(events[0]["detail"]) in ({"n": 0}, {"n": 1})
    dictionary = json.loads((out / "data_dictionary.json").read_text())
    for table, names in (("trials", DOC_TRIAL_COLUMNS), ("clicks", DOC_CLICK_COLUMNS), ("events", DOC_EVENT_COLUMNS)):
        cols = dictionary["tables"][table]["columns"]
        assert [c["name"] for c in cols] == names and all(c["description"] for c in cols)
    assert dictionary["pseudonymised"] is True and dictionary["rows"]["trials"] == 24


def test_raw_ids_only_when_asked(app, filled, tmp_path):
    _, inserted = filled
    with app.app_context():
        export.export_study(db.session(), "demo", tmp_path, fmt="csv", secret_key="k", pseudonymise=False)
    assert {r["participant"] for r in _read_csv(tmp_path / "trials.csv")} == set(inserted["participants"])
    assert json.loads((tmp_path / "data_dictionary.json").read_text())["pseudonymised"] is False


def test_pseudonyms_are_keyed():
    assert export.pseudonym("PID1", "a") != export.pseudonym("PID1", "b")
    assert export.pseudonym("PID1", "a") == export.pseudonym("PID1", "a")


def test_batches_stream_from_the_cursor(app, stimuli_dir):
    sid = create_demo_study(app, stimuli_dir(2, 2))
    populate(app, sid, 30, 100)  # 3,000 responses
    with app.app_context():
        study = db.session().get(Study, sid)
        gen = export.iter_batches(db.session(), study, "trials", "k", batch_size=500)
        assert inspect.isgenerator(gen)
        first = next(gen)  # the first batch comes before the rest is read
        assert len(first) == 500
        sizes = [len(first)] + [len(b) for b in gen]
    assert sizes == [500] * 6
    # CSV chunks: the header, then one chunk per batch -- never the whole table at once
    with app.app_context():
        study = db.session().get(Study, sid)
        chunks = list(export.csv_chunks("trials", export.iter_batches(db.session(), study, "trials", "k", batch_size=1000)))
    assert len(chunks) == 4 and chunks[0].startswith("study,task,participant")
    assert sum(c.count("\n") for c in chunks[1:]) == 3000


def test_parquet_is_written_one_row_group_per_batch(app, stimuli_dir, tmp_path):
    sid = create_demo_study(app, stimuli_dir(2, 2))
    populate(app, sid, 10, 30, clicks_each=2)
    with app.app_context():
        export.export_study(db.session(), "demo", tmp_path, fmt="parquet", secret_key="k", batch_size=100)
    meta = pq.ParquetFile(tmp_path / "trials.parquet").metadata
    assert meta.num_rows == 300 and meta.num_row_groups == 3
    assert pq.ParquetFile(tmp_path / "clicks.parquet").metadata.num_row_groups == 6


def test_empty_study_exports_headers_only(app, stimuli_dir, tmp_path):
    create_demo_study(app, stimuli_dir(1, 1))
    with app.app_context():
        counts = export.export_study(db.session(), "demo", tmp_path, fmt="parquet", secret_key="k")
    assert counts == {"trials": 0, "clicks": 0, "events": 0}
    assert pq.read_table(tmp_path / "trials.parquet").schema.names == DOC_TRIAL_COLUMNS


def test_unknown_study_and_format_name_the_field(app, tmp_path):
    with app.app_context():
        with pytest.raises(export.ExportError) as e:
            export.export_study(db.session(), "nope", tmp_path, fmt="csv", secret_key="k")
        assert e.value.field == "study"
        with pytest.raises(export.ExportError) as e:
            export.export_study(db.session(), "nope", tmp_path, fmt="xlsx", secret_key="k")
        assert e.value.field == "format"


def test_web_download_streams_and_needs_login(app, client, logged_in, filled):
    resp = logged_in.get("/researcher/studies/demo/export/trials.csv")
    assert resp.status_code == 200 and resp.is_streamed
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert len(rows) == 24 and list(rows[0]) == DOC_TRIAL_COLUMNS
    assert len(rows[0]["participant"]) == 16
    raw = logged_in.get("/researcher/studies/demo/export/trials.csv?raw=1").get_data(as_text=True)
    assert "PID0000-0" in raw
    resp = logged_in.get("/researcher/studies/demo/export/clicks.parquet")
    assert resp.status_code == 200
    assert pq.read_table(io.BytesIO(resp.get_data())).num_rows == 72
    d = logged_in.get("/researcher/studies/demo/export/data_dictionary.json").get_json()
    assert [c["name"] for c in d["tables"]["clicks"]["columns"]] == DOC_CLICK_COLUMNS
    assert logged_in.get("/researcher/studies/demo/export/trials.xlsx").status_code == 404
    logged_in.post("/researcher/logout")
    assert logged_in.get("/researcher/studies/demo/export/trials.csv").status_code == 302


@pytest.mark.postgres
def test_export_on_postgres(postgres_url, tmp_path, stimuli_dir):
    from researcher_helpers import fresh_postgres_database

    with fresh_postgres_database(postgres_url) as url:
        app = make_app(tmp_path, database_url=url)
        sid = create_demo_study(app, stimuli_dir(2, 2))
        inserted = populate(app, sid, 5, 8, clicks_each=2, events_each=1)
        with app.app_context():
            counts = export.export_study(db.session(), "demo", tmp_path / "pg", fmt="parquet", secret_key="k", batch_size=9)
        app.extensions["sqlalchemy_engine"].dispose()
    assert counts == {"trials": 40, "clicks": 80, "events": 5}
    table = pq.read_table(tmp_path / "pg" / "trials.parquet").to_pylist()
    assert sorted(r["rt_ms"] for r in table) == sorted(r["rt_ms"] for r in inserted["responses"])
    assert table[0]["received_at"] == "2026-01-01T12:00:00.000Z"

"""Reading the export (§3) and model maps (§4), with clear errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis import load, synthetic_exports
from analysis.staircase import StaircaseRule


@pytest.fixture
def study(tmp_path):
    return synthetic_exports.write_study(str(tmp_path / "csv"), "csv"), synthetic_exports.write_study(
        str(tmp_path / "pq"), "parquet")


def test_csv_and_parquet_load_to_the_same_tidy_tables(study):
    csv, pq = study
    a = load.load_export(csv["trials"].rsplit("/", 1)[0])
    b = load.load_export(pq["trials"].rsplit("/", 1)[0])
    pd.testing.assert_frame_equal(a.trials, b.trials)
    pd.testing.assert_frame_equal(a.clicks, b.clicks)
    assert list(a.trials.columns) == [*load.TRIAL_COLUMNS, *load.OPTIONAL_COLUMNS["trials"]]
    assert a.trials["correct"].dtype == np.float64 and pd.api.types.is_string_dtype(a.trials["model"])
    assert (a.trials.loc[a.trials["source"] == "real", "model"] == "").all()
    assert len(a.sources) == 3 and all(len(h) == 64 for h in a.sources.values())


def test_missing_file_and_column_are_named(tmp_path):
    with pytest.raises(load.AnalysisInputError, match="trials.csv"):
        load.load_export(tmp_path)
    pd.DataFrame({"study": ["s"], "task": ["realfake"]}).to_csv(tmp_path / "trials.csv")
    with pytest.raises(load.AnalysisInputError, match="missing column.*participant"):
        load.load_export(tmp_path)


def test_bad_values_are_named():
    df = pd.DataFrame({c: ["1"] for c in load.CLICK_COLUMNS})
    df["x"] = "left"
    with pytest.raises(load.AnalysisInputError, match="column x"):
        load.tidy(df, "clicks")
    df["x"] = "1.5"
    with pytest.raises(load.AnalysisInputError, match=r"\[0, 1\]"):
        load.tidy(df, "clicks")


def test_database_relations_with_the_export_columns(study, tmp_path):
    csv, _ = study
    exp = load.load_export(csv["trials"].rsplit("/", 1)[0])
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    exp.trials.to_sql("export_trials", engine, index=False)
    exp.clicks.to_sql("export_clicks", engine, index=False)
    engine.dispose()
    got = load.load_database(url, study="sim")
    want = exp.trials.sort_values(["participant", "trial_index"], kind="stable")
    pd.testing.assert_frame_equal(got.trials, want.reset_index(drop=True))
    assert len(got.clicks) == len(exp.clicks)
    assert got.events.empty
    assert load.load_database(url, study="other").trials.empty
    with pytest.raises(load.AnalysisInputError, match="no relation nope"):
        load.load_database(url, relations={"trials": "nope"})


def test_load_maps_and_errors(study, tmp_path):
    csv, _ = study
    maps = load.load_maps(csv["maps"])
    assert set(maps) == {"saliency", "random"}
    m = next(iter(maps["saliency"].values()))
    assert m.dtype == np.float32 and m.ndim == 2
    bad = tmp_path / "bad" / "m"
    bad.mkdir(parents=True)
    (bad / "index.json").write_text(json.dumps({"method": "m", "stimulus_ids": ["a"]}))
    with pytest.raises(load.AnalysisInputError, match="a.npy"):
        load.load_maps(tmp_path / "bad")
    np.save(bad / "a.npy", -np.ones((2, 2)))
    with pytest.raises(load.AnalysisInputError, match="non-negative"):
        load.load_maps(tmp_path / "bad")
    with pytest.raises(load.AnalysisInputError, match="no METHOD/index.json"):
        load.load_maps(tmp_path)


@pytest.mark.postgres
def test_database_on_postgresql(study, postgres_url):
    import uuid

    import sqlalchemy as sa

    csv, _ = study
    exp = load.load_export(csv["trials"].rsplit("/", 1)[0])
    names = {k: f"h5_{k}_{uuid.uuid4().hex[:8]}" for k in ("trials", "clicks", "events")}
    engine = sa.create_engine(postgres_url)
    try:
        exp.trials.to_sql(names["trials"], engine, index=False)
        exp.clicks.to_sql(names["clicks"], engine, index=False)
        got = load.load_database(postgres_url, "sim", relations=names)

        def ordered(df, keys):
            return df.sort_values(keys, kind="stable").reset_index(drop=True)

        pd.testing.assert_frame_equal(got.trials, ordered(exp.trials, ["participant",
                                                                       "trial_index"]))
        pd.testing.assert_frame_equal(got.clicks, ordered(exp.clicks, ["participant",
                                                                       "trial_index", "order"]))
    finally:
        with engine.begin() as conn:
            for name in names.values():
                conn.execute(sa.text(f'DROP TABLE IF EXISTS "{name}"'))
        engine.dispose()


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """A simulated export read as raw strings: (trials, clicks, events) to alter and write."""
    p = synthetic_exports.write_study(str(tmp_path_factory.mktemp("raw")), "csv")
    return tuple(pd.read_csv(p[n], dtype=str, keep_default_na=False)
                 for n in ("trials", "clicks", "events"))


def _write(tmp_path, trials, clicks, events):
    d = tmp_path / "export"
    d.mkdir(exist_ok=True)
    for name, df in (("trials", trials), ("clicks", clicks), ("events", events)):
        df.to_csv(d / f"{name}.csv", index=False)
    return d


def test_a_clean_export_needs_no_repair(raw, tmp_path):
    assert load.load_export(_write(tmp_path, *raw)).repairs == []


def test_answers_in_another_letter_case_are_repaired_and_reported(raw, tmp_path):
    trials, clicks, events = (df.copy() for df in raw)
    rf = np.flatnonzero(trials["task"] == "realfake")
    trials.loc[rf[:3], "answer"] = trials.loc[rf[:3], "answer"].str.capitalize()  # "Fake"
    trials.loc[rf[3], "answer"] = f" {trials.loc[rf[3], 'answer'].upper()} "
    trials.loc[rf[4], "source"] = trials.loc[rf[4], "source"].upper()
    got = load.load_export(_write(tmp_path, trials, clicks, events))
    pd.testing.assert_frame_equal(got.trials, load.tidy(raw[0], "trials"))
    assert len(got.repairs) == 2
    assert got.repairs[0].startswith("trials: column source: 1 value in another letter case")
    assert got.repairs[1].startswith("trials: column answer: 4 values in another letter case")
    assert "-> 'fake'" in got.repairs[1] or "-> 'real'" in got.repairs[1]


def test_values_outside_the_vocabulary_are_errors(raw, tmp_path):
    trials, clicks, events = (df.copy() for df in raw)
    trials.loc[5, "answer"] = "maybe"
    with pytest.raises(load.AnalysisInputError,
                       match=r"^trials in .*: column answer has 'maybe' on row 5; allowed"):
        load.load_export(_write(tmp_path, trials, clicks, events))


def test_exact_duplicate_rows_are_dropped_and_reported(raw, tmp_path):
    trials, clicks, events = raw
    t2 = pd.concat([trials, trials.iloc[[4, 9, 9]]], ignore_index=True)
    c2 = pd.concat([clicks.iloc[:10], clicks.iloc[[2]], clicks.iloc[10:]], ignore_index=True)
    got = load.load_export(_write(tmp_path, t2, c2, events))
    clean = load.tidy(trials, "trials")
    pd.testing.assert_frame_equal(got.trials, clean)
    pd.testing.assert_frame_equal(got.clicks, load.tidy(clicks, "clicks"))
    n = len(trials)
    assert got.repairs == [
        f"trials: 3 exact duplicate rows dropped, the first copy of each kept (rows {n}, "
        f"{n + 1}, {n + 2})",
        "clicks: 1 exact duplicate row dropped, the first copy of each kept (row 10)"]


def test_a_repeated_client_uuid_or_trial_with_different_content_is_an_error(raw, tmp_path):
    trials, clicks, events = raw
    rf = int(np.flatnonzero(trials["task"] == "realfake")[0])
    copy = trials.iloc[[rf]].copy()
    copy["answer"] = "real" if copy["answer"].iloc[0] == "fake" else "fake"
    copy["correct"] = "1.0" if copy["correct"].iloc[0] == "0.0" else "0.0"
    bad = pd.concat([trials, copy], ignore_index=True)
    uuid = trials.loc[rf, "client_uuid"]
    with pytest.raises(load.AnalysisInputError,
                       match=rf"client_uuid {uuid} repeats on rows that differ \(rows {rf}, "
                             rf"{len(trials)}\)"):
        load.load_export(_write(tmp_path, bad, clicks, events))
    copy["client_uuid"] = "another"
    bad = pd.concat([trials, copy], ignore_index=True)
    with pytest.raises(load.AnalysisInputError, match=r"\(study, participant, trial_index\)"):
        load.load_export(_write(tmp_path, bad, clicks, events))


def test_correct_that_contradicts_answer_and_source_is_an_error(raw, tmp_path):
    trials, clicks, events = (df.copy() for df in raw)
    rf = np.flatnonzero(trials["task"] == "realfake")[[2, 7]]
    trials.loc[rf, "correct"] = np.where(trials.loc[rf, "correct"] == "1.0", "0.0", "1.0")
    with pytest.raises(load.AnalysisInputError,
                       match=rf"column correct contradicts answer and source on rows "
                             rf"{rf[0]}, {rf[1]} "):
        load.load_export(_write(tmp_path, trials, clicks, events))


@pytest.mark.parametrize("table,column", [("trials", "participant"), ("trials", "stimulus_id"),
                                          ("clicks", "participant")])
def test_empty_ids_are_errors(raw, tmp_path, table, column):
    tables = dict(zip(("trials", "clicks", "events"), (df.copy() for df in raw), strict=True))
    tables[table].loc[[3, 8], column] = ""
    with pytest.raises(load.AnalysisInputError,
                       match=rf"^{table} in .*: column {column} is empty on rows 3, 8$"):
        load.load_export(_write(tmp_path, *tables.values()))


def test_clicks_without_a_trial_are_dropped_and_reported(raw, tmp_path):
    trials, clicks, events = raw
    stray = clicks.iloc[:4].copy()
    stray["participant"] = "nobody"
    got = load.load_export(_write(tmp_path, trials, pd.concat([clicks, stray]), events))
    pd.testing.assert_frame_equal(got.clicks, load.tidy(clicks, "clicks"))
    assert got.repairs == [
        f"clicks: 4 clicks on 1 (participant, trial_index) pair with no trial dropped "
        f"((nobody, {stray['trial_index'].iloc[0]}))"]
    moved = clicks.copy()
    moved.loc[6, "stimulus_id"] = "elsewhere"
    with pytest.raises(load.AnalysisInputError, match=r"clicks in .*: column stimulus_id "
                                                      r"differs .* on row 6;"):
        load.load_export(_write(tmp_path, trials, moved, events))


def test_the_database_path_is_checked_too(raw, tmp_path):
    import sqlalchemy as sa

    trials, clicks, _ = (df.copy() for df in raw)
    trials.loc[0, "answer"] = trials.loc[0, "answer"].upper()
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = sa.create_engine(url)
    trials.to_sql("export_trials", engine, index=False)
    clicks.to_sql("export_clicks", engine, index=False)
    engine.dispose()
    got = load.load_database(url)
    assert len(got.repairs) == 1 and "column answer: 1 value in" in got.repairs[0]


def test_the_data_dictionary_gives_the_staircase_settings(study, tmp_path):
    export = study[0]["trials"].rsplit("/", 1)[0]
    assert load.load_export(export).staircase == {}  # no data dictionary: none recorded
    on = {"enabled": True, "up": 1, "down": 2, "step_ms": 50.0, "min_ms": 100.0,
          "max_ms": 1000.0, "start_ms": 500.0, "n_reversals_threshold": 6}
    path = tmp_path / "csv" / "export" / "data_dictionary.json"
    path.write_text(json.dumps({"study": "sim", "staircase": {"enabled": False},
                                "conditions": {"timed": {"staircase": on}}}))
    got = load.load_export(export)
    assert got.staircase == {("sim", ""): None, ("sim", "timed"): StaircaseRule(down=2)}
    assert str(path) in got.sources
    path.write_text(json.dumps({"study": "sim", "tables": {}}))  # records no staircase
    assert load.load_export(export).staircase == {}
    for bad, field in (({"staircase": {**on, "down": 0}}, "field staircase"),
                       ({"staircase": on, "conditions": {"timed": {"staircase": {
                           **on, "stepms": 5}}}}, "field conditions.timed.staircase"),
                       ({"staircase": on, "conditions": {"timed": {}}},
                        "field conditions.timed.staircase: missing")):
        path.write_text(json.dumps({"study": "sim", **bad}))
        with pytest.raises(load.AnalysisInputError, match=field):
            load.load_export(export)
    path.write_text("{not json")
    with pytest.raises(load.AnalysisInputError, match="data_dictionary.json: not valid JSON"):
        load.load_export(export)


def test_design_versions_give_their_own_staircases_and_trials_keep_the_hash(study, tmp_path):
    export = study[0]["trials"].rsplit("/", 1)[0]
    assert set(load.load_export(export).trials["design_hash"]) == {synthetic_exports.SIM_DESIGN_HASH}
    on = {"enabled": True, "up": 1, "down": 2, "step_ms": 50.0, "min_ms": 100.0,
          "max_ms": 1000.0, "start_ms": 500.0, "n_reversals_threshold": 6}
    old, new = "a" * 64, "b" * 64
    path = tmp_path / "csv" / "export" / "data_dictionary.json"
    path.write_text(json.dumps({
        "study": "sim", "staircase": {**on, "down": 3}, "conditions": {"timed": {"staircase": {**on, "down": 3}}},
        "design_versions": {
            old: {"participants": 2, "settings": {}, "staircase": on, "conditions": {"timed": {"staircase": on}}},
            new: {"participants": 1, "settings": {}, "staircase": {**on, "down": 3},
                  "conditions": {"timed": {"staircase": {"enabled": False}}}},
            "c" * 64: {"participants": 1, "settings": {}},  # an older export: settings only
        }}))
    got = load.load_export(export).staircase
    assert got == {("sim", ""): StaircaseRule(down=3), ("sim", "timed"): StaircaseRule(down=3),
                   ("sim", "", old): StaircaseRule(down=2), ("sim", "timed", old): StaircaseRule(down=2),
                   ("sim", "", new): StaircaseRule(down=3), ("sim", "timed", new): None}
    path.write_text(json.dumps({"study": "sim", "staircase": on, "design_versions": {
        old: {"staircase": on, "conditions": {"timed": {}}}}}))
    with pytest.raises(load.AnalysisInputError, match=f"field design_versions.{old}.conditions.timed.staircase: missing"):
        load.load_export(export)


def test_a_trials_table_without_design_hash_reads_as_empty_hashes(raw):
    trials = raw[0].drop(columns=["design_hash"], errors="ignore")
    assert set(load.tidy(trials, "trials")["design_hash"]) == {""}


def test_database_staircase_reads_only_the_chosen_studys_rows(tmp_path):
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE studies (id INTEGER, slug TEXT, settings TEXT)"))
        conn.execute(sa.text("CREATE TABLE conditions (study_id INTEGER, name TEXT, settings TEXT)"))
        conn.execute(sa.text("INSERT INTO studies VALUES (1, 'a', :s), (2, 'b', '{}')"),
                     {"s": json.dumps({"staircase": {"enabled": True, "down": 2}})})
        conn.execute(sa.text("INSERT INTO conditions VALUES (1, 'fine', '{}'), (2, 'broken', :s)"),
                     {"s": json.dumps({"staircase": [1, 2]})})
    with engine.connect() as conn:
        assert load.database_staircase(conn, "a") == {("a", ""): StaircaseRule(down=2),
                                                      ("a", "fine"): StaircaseRule(down=2)}
        with pytest.raises(load.AnalysisInputError, match="conditions 'broken' settings: staircase must be"):
            load.database_staircase(conn)
    engine.dispose()

"""Reading the export (§3) and model maps (§4), with clear errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis import load, simulate


@pytest.fixture
def study(tmp_path):
    return simulate.write_study(str(tmp_path / "csv"), "csv"), simulate.write_study(
        str(tmp_path / "pq"), "parquet")


def test_csv_and_parquet_load_to_the_same_tidy_tables(study):
    csv, pq = study
    a = load.load_export(csv["trials"].rsplit("/", 1)[0])
    b = load.load_export(pq["trials"].rsplit("/", 1)[0])
    pd.testing.assert_frame_equal(a.trials, b.trials)
    pd.testing.assert_frame_equal(a.clicks, b.clicks)
    assert list(a.trials.columns) == list(load.TRIAL_COLUMNS)
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

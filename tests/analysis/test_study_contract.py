"""The export contract (§3): files written by the study's own writers load into analysis."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import load, synthetic_exports

export = pytest.importorskip("study.export")


def _rows(df: pd.DataFrame) -> list[dict]:
    """DataFrame rows as the study's writers receive them (None for missing values)."""
    out = df.astype(object).where(df.notna(), None).to_dict("records")
    for row in out:
        for key in ("steps", "seed", "correct", "confidence"):
            if key in row and row[key] is not None:
                row[key] = int(row[key])
    return out


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_study_writers_output_loads_with_the_documented_types(tmp_path, fmt):
    rng = np.random.default_rng(0)
    stim = synthetic_exports.stimuli(6, 6)
    trials = synthetic_exports.realfake_trials(stim, 3, 8, 1.0, 0.0, rng)
    ck, clicks = synthetic_exports.clickme_export(np.ones((2, 4, 4)), ["real-0", "real-1"], 3, 4, rng,
                                         stim)
    trials = pd.concat([trials, ck], ignore_index=True)
    events = pd.DataFrame({"study": "sim", "participant": ["p0", "p1"], "trial_index": [2, None],
                           "kind": ["blur", "resize"], "t_ms": [5.0, 6.0],
                           "detail": ["{}", "{}"], "received_at": ["2026-01-01T00:00:00Z"] * 2})
    for name, df in (("trials", trials), ("clicks", clicks), ("events", events)):
        path = tmp_path / f"{name}.{fmt}"
        if fmt == "csv":
            with open(path, "w", newline="") as fh:
                export.write_csv(name, iter([_rows(df)]), fh)
        else:
            export.write_parquet(name, iter([_rows(df)]), path)
    got = load.load_export(tmp_path)
    assert len(got.trials) == len(trials) and len(got.clicks) == len(clicks)
    assert got.trials["correct"].isna().sum() == len(ck)  # empty for ClickMe
    np.testing.assert_allclose(got.clicks["x"], clicks["x"])
    assert (got.trials.loc[got.trials["source"] == "real", "model"] == "").all()
    assert got.events["trial_index"].isna().tolist() == [False, True]

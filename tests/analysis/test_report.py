"""The report CLI on a small simulated export: HTML with embedded figures, CSV tables."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import judgments, load, synthetic_exports
from analysis.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_report_writes_html_with_figures_and_tables(tmp_path, fmt):
    p = synthetic_exports.write_study(str(tmp_path / "in"), fmt)
    export = str(Path(p["trials"]).parent)
    out = tmp_path / "out"
    rc = main(["report", "--export", export, "--maps", p["maps"], "--features", p["features"],
               "--critic", p["critic"], "--classifier", p["classifier"], "--out", str(out),
               "--n-boot", "200", "--ceiling-repeats", "10"])
    assert rc == 0
    html = (out / "report.html").read_text()
    imgs = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)
    assert len(imgs) >= 6 and all(len(i) > 1000 for i in imgs)
    assert "http" not in html.replace("http-equiv", "")  # nothing fetched from elsewhere
    tables = {f.stem for f in (out / "tables").glob("*.csv")}
    for name in ("inputs", "versions", "qc_summary", "judgments_overall", "judgments_by_model",
                 "staircase_summary", "mixed_logit_fixed", "noise_ceiling", "alignment_by_method",
                 "agreement", "generalization_curves", "diversity_recognizability",
                 "sample_quality"):
        assert name in tables, name
    # the numbers in the tables are those of the statistics on the QC-kept trials
    exp = load.load_export(export)
    qc = pd.read_csv(out / "tables" / "qc_participants.csv")
    assert set(qc.loc[qc["excluded"], "participant"]) == {"p0", "p1"}  # catch and focus
    kept = exp.trials[~exp.trials["participant"].isin(["p0", "p1"])]
    want = judgments.sdt_table(judgments.judgment_trials(kept), ["model"], n_boot=10)
    got = pd.read_csv(out / "tables" / "judgments_by_model.csv")
    np.testing.assert_allclose(got["dprime"], want["dprime"], atol=1e-9)
    assert f"{got['dprime'][0]:.4g}" in html
    inputs = pd.read_csv(out / "tables" / "inputs.csv")
    assert inputs["path"].str.endswith(f"trials.{fmt}").any()
    assert inputs["sha256"].str.len().eq(64).all()
    mixed = pd.read_csv(out / "tables" / "mixed_logit_fixed.csv")
    assert mixed["term"].tolist() == ["Intercept", "C(model)[T.cfgdm]", "C(model)[T.ddpm]"]
    align = pd.read_csv(out / "tables" / "alignment_by_method.csv").set_index("method")
    assert align.loc["saliency", "spearman"] > align.loc["random", "spearman"] + 0.2


def test_cli_errors_name_the_missing_file_and_column(tmp_path, capsys):
    assert main(["report", "--export", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "trials.csv" in capsys.readouterr().err
    p = synthetic_exports.write_study(str(tmp_path / "in"), "csv")
    trials = pd.read_csv(p["trials"]).drop(columns="rt_ms")
    trials.to_csv(p["trials"], index=False)
    assert main(["report", "--export", str(Path(p["trials"]).parent), "--out",
                 str(tmp_path / "o")]) == 2
    assert "missing column(s) rt_ms" in capsys.readouterr().err


def test_module_entry_point_runs(tmp_path):
    p = synthetic_exports.write_study(str(tmp_path / "in"), "csv")
    proc = subprocess.run(
        [sys.executable, "-m", "analysis", "report", "--export", str(Path(p["trials"]).parent),
         "--out", str(tmp_path / "out"), "--n-boot", "50", "--ceiling-repeats", "5"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "report.html").exists()
    bad = subprocess.run([sys.executable, "-m", "analysis", "report", "--export", str(tmp_path),
                          "--out", str(tmp_path / "o")], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """A simulated study: paths, and its export read as raw strings (trials, clicks, events)."""
    p = synthetic_exports.write_study(str(tmp_path_factory.mktemp("sim")), "csv")
    raw = tuple(pd.read_csv(p[n], dtype=str, keep_default_na=False)
                for n in ("trials", "clicks", "events"))
    return p, raw


def _export(tmp_path, trials, clicks, events) -> str:
    d = tmp_path / "export"
    d.mkdir(parents=True, exist_ok=True)
    for name, df in (("trials", trials), ("clicks", clicks), ("events", events)):
        df.to_csv(d / f"{name}.csv", index=False)
    return str(d)


def _stale(out: Path) -> None:
    """Outputs of an earlier run that a failed run must not leave behind."""
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "report.html").write_text("<html>an earlier report</html>")
    (out / "tables" / "judgments_overall.csv").write_text("dprime\n9\n")


def _bad_exports(raw):
    trials, clicks, events = raw
    rf = np.flatnonzero(trials["task"] == "realfake")
    copy = trials.iloc[[rf[0]]].copy()
    copy["answer"] = "real" if copy["answer"].iloc[0] == "fake" else "fake"
    copy["correct"] = "1.0" if copy["correct"].iloc[0] == "0.0" else "0.0"
    yield "client_uuid", pd.concat([trials, copy], ignore_index=True), clicks
    t = trials.copy()
    t.loc[rf[3], "correct"] = "1.0" if t.loc[rf[3], "correct"] == "0.0" else "0.0"
    yield "column correct contradicts answer and source", t, clicks
    t = trials.copy()
    t.loc[4, "participant"] = ""
    yield "column participant is empty on row 4", t, clicks
    t = trials.copy()
    t.loc[rf[1], "stimulus_id"] = ""
    yield f"column stimulus_id is empty on row {rf[1]}", t, clicks
    t = trials.copy()
    t.loc[rf[2], "answer"] = "maybe"
    yield "column answer has 'maybe'", t, clicks
    c = clicks.copy()
    c.loc[0, "stimulus_id"] = "elsewhere"
    yield "column stimulus_id differs", trials, c


def test_cli_bad_exports_fail_in_one_line_and_leave_no_earlier_report(sim, tmp_path, capsys):
    _, raw = sim
    out = tmp_path / "out"
    for i, (needle, trials, clicks) in enumerate(_bad_exports(raw)):
        _stale(out)
        export = _export(tmp_path / str(i), trials, clicks, raw[2])
        assert main(["report", "--export", export, "--out", str(out)]) == 2, needle
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and needle in err, err
        assert not (out / "report.html").exists()
        assert not list((out / "tables").glob("*.csv"))
    # the same through the interpreter: no traceback, exit status 2
    _stale(out)
    proc = subprocess.run([sys.executable, "-m", "analysis", "report", "--export", export,
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr and not (out / "report.html").exists()


def test_cli_states_the_repairs_in_the_report(sim, tmp_path, capsys):
    p, (trials, clicks, events) = sim
    t = trials.copy()
    rf = np.flatnonzero(t["task"] == "realfake")
    t.loc[rf[:5], "answer"] = t.loc[rf[:5], "answer"].str.capitalize()  # "Fake", "Real"
    t = pd.concat([t, t.iloc[[rf[7]]]], ignore_index=True)  # an exact copy of one row
    stray = clicks.iloc[:3].assign(participant="nobody")
    export = _export(tmp_path, t, pd.concat([clicks, stray]), events)
    out = tmp_path / "out"
    rc = main(["report", "--export", export, "--out", str(out), "--n-boot", "20",
               "--ceiling-repeats", "2", "--maps", p["maps"]])
    assert rc == 0
    err = capsys.readouterr().err
    assert err.count("repaired: ") == 3
    repairs = pd.read_csv(out / "tables" / "load_repairs.csv")["repair"].tolist()
    assert [r.split(":")[0] for r in repairs] == ["trials", "trials", "clicks"]
    html = (out / "report.html").read_text()
    assert "Repairs made when loading the export" in html
    assert "5 values in another letter case" in html
    # the repaired export gives the clean export's numbers
    clean = tmp_path / "clean"
    assert main(["report", "--export", str(Path(p["trials"]).parent), "--out", str(clean),
                 "--n-boot", "20", "--ceiling-repeats", "2", "--maps", p["maps"]]) == 0
    for name in ("judgments_overall", "noise_ceiling", "alignment_by_method"):
        pd.testing.assert_frame_equal(pd.read_csv(out / "tables" / f"{name}.csv"),
                                      pd.read_csv(clean / "tables" / f"{name}.csv"))
    assert pd.read_csv(clean / "tables" / "load_repairs.csv").empty


def test_cli_export_without_fake_trials_says_what_it_cannot_compute(sim, tmp_path):
    p, (trials, clicks, events) = sim
    t = trials.loc[~((trials["task"] == "realfake") & (trials["source"] == "model"))]
    out = tmp_path / "out"
    rc = main(["report", "--export", _export(tmp_path, t, clicks, events), "--out", str(out),
               "--n-boot", "20", "--ceiling-repeats", "2", "--classifier", p["classifier"]])
    assert rc == 0
    html = (out / "report.html").read_text()
    assert "show no fake (model) stimuli" in html
    acc = pd.read_csv(out / "tables" / "judgments_accuracy.csv")
    assert acc["source"].tolist() == ["real"] and acc["n_trials"].sum() > 0
    assert not (out / "tables" / "judgments_by_model.csv").exists()


def test_cli_min_subjects_1_skips_the_ceiling_of_single_participant_images(sim, tmp_path):
    p, (trials, clicks, events) = sim
    ck = trials["task"] == "clickme"
    first = trials.loc[ck, "stimulus_id"].iloc[0]
    # image `first` keeps one participant (c3); no real/fake trials, so the run is short
    drop = ck & (trials["stimulus_id"] == first) & (trials["participant"] != "c3")
    t = trials.loc[ck & ~drop]
    out = tmp_path / "out"
    args = ["report", "--out", str(out), "--n-boot", "20", "--ceiling-repeats", "2",
            "--maps", p["maps"], "--min-subjects", "1"]
    assert main([*args, "--export", _export(tmp_path / "one", t, clicks, events)]) == 0
    html = (out / "report.html").read_text()
    n_img = t["stimulus_id"].nunique()
    assert f"1 of {n_img} images have a single participant" in html
    nc = pd.read_csv(out / "tables" / "noise_ceiling.csv").iloc[0]
    assert nc["n_images"] == n_img and nc["n_images_ceiling"] == n_img - 1
    per = pd.read_csv(out / "tables" / "noise_ceiling_per_image.csv").set_index("stimulus_id")
    assert np.isnan(per.loc[first, "ceiling"]) and per["ceiling"].notna().sum() == n_img - 1
    align = pd.read_csv(out / "tables" / "alignment_by_method.csv")
    assert (align["n_images"] == n_img).all() and (align["n_images_ceiling"] == n_img - 1).all()
    # every image with one participant: no ceiling at all, the reason stated
    t = trials.loc[ck & (trials["participant"] == "c3")]
    assert main([*args, "--export", _export(tmp_path / "all", t, clicks, events)]) == 0
    html = (out / "report.html").read_text()
    assert "Split-half noise ceiling not computed" in html
    assert not (out / "tables" / "noise_ceiling.csv").exists()
    align = pd.read_csv(out / "tables" / "alignment_by_method.csv")
    assert align["spearman"].notna().all() and align["alignment"].isna().all()


def test_a_report_that_fails_midway_removes_its_outputs(sim, tmp_path, capsys):
    p, (trials, clicks, events) = sim
    t = trials.loc[trials["task"] == "clickme"]
    bad = tmp_path / "classifier.csv"
    pd.read_csv(p["classifier"]).assign(answer="maybe").to_csv(bad, index=False)
    out = tmp_path / "out"
    _stale(out)
    rc = main(["report", "--export", _export(tmp_path, t, clicks, events), "--out", str(out),
               "--n-boot", "20", "--ceiling-repeats", "2", "--classifier", str(bad)])
    assert rc == 2 and "column answer must be real or fake" in capsys.readouterr().err
    assert not (out / "report.html").exists() and not list((out / "tables").glob("*.csv"))

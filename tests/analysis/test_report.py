"""The report CLI on a small simulated export: HTML with embedded figures, CSV tables."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import judgments, load, simulate
from analysis.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_report_writes_html_with_figures_and_tables(tmp_path, fmt):
    p = simulate.write_study(str(tmp_path / "in"), fmt)
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
    p = simulate.write_study(str(tmp_path / "in"), "csv")
    trials = pd.read_csv(p["trials"]).drop(columns="rt_ms")
    trials.to_csv(p["trials"], index=False)
    assert main(["report", "--export", str(Path(p["trials"]).parent), "--out",
                 str(tmp_path / "o")]) == 2
    assert "missing column(s) rt_ms" in capsys.readouterr().err


def test_module_entry_point_runs(tmp_path):
    p = simulate.write_study(str(tmp_path / "in"), "csv")
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

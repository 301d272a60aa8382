"""The report's judgment tables: the study's staircase settings and the named statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis import synthetic_exports
from analysis.__main__ import main


def _report(tmp_path: Path, name: str, *extra: str) -> tuple[int, Path]:
    p = synthetic_exports.write_study(str(tmp_path / "in"), "csv")
    out = tmp_path / name
    rc = main(["report", "--export", str(Path(p["trials"]).parent), "--out", str(out),
               "--n-boot", "50", "--ceiling-repeats", "3", *extra])
    return rc, out


def test_report_replays_the_staircase_with_the_app_defaults_or_the_given_settings(tmp_path,
                                                                                   capsys):
    # the simulated HYPE-time participants run the app's default rule (1-up-3-down)
    rc, out = _report(tmp_path, "default")
    assert rc == 0
    thr = pd.read_csv(out / "tables" / "staircase_thresholds.csv", keep_default_na=False)
    assert len(thr) == 6 and (thr["note"] == "").all()
    assert np.isfinite(thr["threshold_ms"].astype(float)).all()
    assert (thr["rule_from"] == "default").all() and thr["rule"].str.contains("down=3").all()
    html = (out / "report.html").read_text()
    assert "down=3" in html and "the study app&#x27;s defaults" in html
    fixed = pd.read_csv(out / "tables" / "mixed_logit_fixed.csv")
    assert {"mean", "se_laplace", "lo", "hi", "vb_sd"} <= set(fixed.columns)
    assert (fixed["se_laplace"] > fixed["vb_sd"]).all()
    overall = pd.read_csv(out / "tables" / "judgments_overall.csv")
    assert {"dprime_pooled", "dprime_mean_participant", "n_boot_dropped"} <= set(overall.columns)

    rc, out = _report(tmp_path, "given", "--staircase", '{"enabled": true, "down": 2}')
    assert rc == 0
    thr = pd.read_csv(out / "tables" / "staircase_thresholds.csv", keep_default_na=False)
    assert (thr["note"].str.contains("do not reproduce")).all()
    assert (thr["rule_from"] == "given").all()
    html = (out / "report.html").read_text()
    assert "down=2" in html and "--staircase" in html

    rc, _ = _report(tmp_path, "bad", "--staircase", '{"down": 0}')
    assert rc == 2 and "staircase.down" in capsys.readouterr().err
    rc, _ = _report(tmp_path, "bad2", "--staircase", '{"dwn": 2}')
    assert rc == 2 and "staircase.dwn" in capsys.readouterr().err

"""Quality control flags."""

from __future__ import annotations

import pandas as pd

from analysis import qc


def test_flags_each_rule_and_names_the_reasons():
    rows = []
    for p in ("ok", "inattentive", "fast", "away"):
        for i in range(10):
            rows.append({"participant": p, "trial_kind": "main", "correct": 1.0,
                         "rt_ms": 100.0 if p == "fast" and i < 5 else 800.0})
        for i in range(4):
            rows.append({"participant": p, "trial_kind": "catch",
                         "correct": 0.0 if p == "inattentive" and i < 2 else 1.0, "rt_ms": 800.0})
    trials = pd.DataFrame(rows)
    events = pd.DataFrame({"participant": ["away"] * 7 + ["ok"] * 2,
                           "kind": ["blur"] * 7 + ["resize"] * 2})
    flags = qc.flag_participants(trials, events).set_index("participant")
    assert flags.loc["inattentive", "catch_accuracy"] == 0.5
    assert flags["excluded"].to_dict() == {"away": True, "fast": True, "inattentive": True,
                                           "ok": False}
    assert flags.loc["fast", "reasons"] == "too fast"
    assert flags.loc["away", "reasons"] == "focus losses" and flags.loc["ok", "reasons"] == ""
    assert flags.loc["away", "focus_losses"] == 7 and flags.loc["ok", "focus_losses"] == 0
    summary = qc.qc_summary(flags.reset_index()).set_index("rule")["n_participants"]
    assert summary["excluded"] == 3 and summary["total"] == 4
    lenient = qc.flag_participants(trials, events, qc.QCRules(min_catch_accuracy=0.5,
                                                              max_focus_losses=10))
    assert lenient.set_index("participant")["excluded"].sum() == 1

"""The three pipelines end to end on the tiny profile (one shared cache of trained models), and
their outputs: the files each run folder promises and numbers that must hold if the code is
right. Assertions are relations that hold for any seed of a working pipeline (outputs present
and consistent, effects larger than their standard errors, ground truth recovered within its
confidence interval), never one seed's exact numbers; the full profile's figures are in
BENCHMARKS.md."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from tests.experiments.conftest import _run, metrics_of, served_trial_settings

# The first test to need the shared cache trains the tiny models: minutes on a quiet 2-core
# machine, longer on a loaded one, hence more than pyproject's 600 s per-test timeout.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

RUN_FILES = ("config.json", "log.txt", "metrics.json", "report.md")


def _has_run_files(run: Path, figures: tuple[str, ...]) -> None:
    for name in RUN_FILES:
        assert (run / name).is_file(), name
    for fig in figures:
        png = run / "figures" / f"{fig}.png"
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", fig
    config = json.loads((run / "config.json").read_text())
    assert config["profile_name"] == "tiny" and len(config["models"]) == 3


def test_artist_outputs(artist_run: Path) -> None:
    _has_run_files(artist_run, ("samples", "generalization_curves", "diversity_vs_recognizability",
                                "recognizability_by_guidance"))
    m = metrics_of(artist_run)
    # CFGDM is reported at every guidance scale of the profile; DDPM (no context dropout) at 0 only.
    assert set(m["cfgdm_recognizability_by_guidance"]) == {"0", "0.5", "1", "2"}
    summary = pd.DataFrame(m["summary"])
    assert set(summary.loc[summary["model"] == "ddpm", "guidance"]) == {0.0}
    assert set(summary["model"]) == {"ddpm", "cfgdm", "fsdm", "human"}
    for r in m["summary"]:
        assert 0.0 <= r["recognizability"] <= 1.0 and r["originality"] > 0 and r["diversity"] > 0
    # The critic recognises real held-out drawings far above chance, from one exemplar each.
    assert m["human_recognizability"] > 2 * m["chance"]
    # Guidance makes CFGDM's samples more recognizable, by more than twice the standard error of
    # the difference (a relation in the run's own error units, not one seed's numbers), and less
    # diverse: the trade-off of Boutin et al.
    by_w = {r["guidance"]: r for r in m["summary"] if r["model"] == "cfgdm"}
    rise = by_w[2.0]["recognizability"] - by_w[0.0]["recognizability"]
    se = math.hypot(by_w[2.0]["recognizability_se"], by_w[0.0]["recognizability_se"])
    assert se > 0 and rise > 2 * se, (rise, se)
    assert by_w[2.0]["diversity"] < by_w[0.0]["diversity"]
    # FD-infinity (DESIGN.md) for every (model, guidance), in metrics.json and the report table.
    assert len(m["quality"]) == len(m["fd_infinity"]) > 0
    for r in m["quality"]:
        assert r["fd_inf"] is not None and math.isfinite(r["fd_inf"]), r
    assert "fd_inf" in (artist_run / "report.md").read_text()
    items = pd.read_csv(artist_run / "items.csv")
    assert set(items["correct"].unique()) <= {0, 1}
    curves = pd.read_csv(artist_run / "generalization_curves.csv")
    assert {"model", "guidance", "bin", "originality", "recognizability"} <= set(curves.columns)
    assert "human" in set(curves["model"])
    assert "recognizability" in (artist_run / "report.md").read_text()


def test_artist_same_seed_same_numbers(artist_run: Path, tiny_cache: Path, tmp_path: Path) -> None:
    again = _run("artist", tiny_cache, tmp_path / "again")
    a, b = metrics_of(artist_run), metrics_of(again)
    a.pop("wall_s")
    b.pop("wall_s")
    assert a == b
    assert (artist_run / "items.csv").read_text() == (again / "items.csv").read_text()


def test_facade_outputs(facade_run: Path) -> None:
    _has_run_files(facade_run, ("fraction_sweep", "fooling_by_model_guidance", "fooling_by_class",
                                "saliency_lenet", "saliency_resnet18"))
    m = metrics_of(facade_run)
    # Both classifiers tell the tiny models' samples from human drawings better than chance; the
    # CNN by more than two standard errors. At the tiny size ResNet-18 gets few steps (tiny.toml)
    # and lands 0.58-0.7 depending on the machine's float reductions, so it must only beat chance.
    assert set(m["test_accuracy_all_models"]) == {"CNN", "ResNet-18"}
    two_se = 2 * math.sqrt(0.25 / m["n_test"])
    assert m["test_accuracy_all_models"]["CNN"] > 0.5 + two_se
    assert m["test_accuracy_all_models"]["ResNet-18"] > 0.5
    sweep = pd.DataFrame(m["sweep"])
    assert set(sweep["model"]) == {"ddpm", "cfgdm", "fsdm"} and set(sweep["arch"]) == {"lenet"}
    assert sweep.groupby(["model", "arch"]).size().eq(3).all()
    for _, g in sweep.groupby(["model", "arch"]):  # nested subsets grow with the fraction
        assert g.sort_values("fraction")["n_train"].is_monotonic_increasing
        assert g["test_accuracy"].between(0, 1).all()
    fool = pd.read_csv(facade_run / "fooling_by_model.csv")
    assert fool["fooled_rate"].between(0, 1).all() and (fool["n"] > 0).all()


def test_study_outputs(study_run: Path) -> None:
    _has_run_files(study_run, ("realfake_by_model", "clickme_maps"))
    assert (study_run / "studies.json").is_file()
    m = metrics_of(study_run)
    for slug, sim in m["simulation"].items():
        assert sim["errors"] == 0, (slug, sim["first_errors"])
        assert sim["completed"] == sim["participants"] > 0
        assert sim["confirmed"] == sim["sent"] > 0
    # Every confirmed response is in the export exactly once.
    for slug, counts in m["export_rows"].items():
        trials = pd.read_csv(study_run / "exports" / slug / "trials.csv")
        assert len(trials) == counts["trials"] == m["simulation"][slug]["confirmed"]
        assert trials["client_uuid"].is_unique
    clicks = pd.read_csv(study_run / "exports" / "run-clickme" / "clicks.csv")
    assert len(clicks) > 0 and clicks["x"].between(0, 1).all()
    # Ground truth comes back: the observers' d' lies in the recovered CI (or close), and the
    # clickers' maps follow the ink they clicked on.
    rf = m["realfake"]
    assert math.isfinite(rf["dprime"])
    assert rf["dprime_lo"] - 0.5 <= rf["dprime_true"] <= rf["dprime_hi"] + 0.5
    assert m["clickme"]["n_images_with_map"] > 0
    assert m["clickme"]["mean_spearman_human_map_vs_ink"] > 0.25
    assert m["model_map_methods"] == ["diffusion_score_noised", "guidance_difference", "conditional_gain",
                                      "feedback_saliency", "feedback_gradcam"]
    # Each model map is scored against the clickers' known map; the diffusion map that carries image
    # structure follows the ink, and no method near zero goes without a line that says why.
    known = {r["method"]: r for r in m["model_maps_vs_known_map"]}
    assert set(known) == set(m["model_map_methods"])
    assert known["guidance_difference"]["spearman_lo"] > 0
    for r in known.values():
        if r["indistinguishable_from_zero"]:
            assert "follows the known map" not in r["note"] and len(r["note"]) > 40, r
    report = (study_run / "report.md").read_text()
    assert "Model maps against the clickers' known map" in report
    assert all(f"- `{name}`: " in report for name in known)
    for method in m["model_map_methods"]:
        index = json.loads((study_run / "maps" / method / "index.json").read_text())
        assert len(index["stimulus_ids"]) > 0
    # The analysis report found every method's maps under its name.
    assert {r["method"] for r in m["alignment"]} >= set(m["model_map_methods"])
    for report in m["reports"].values():
        assert Path(report).is_file()


def test_study_serves_clickme_with_feedback(study_run: Path) -> None:
    # The run built a feedback checkpoint; the app must be allowed to load it (FEEDBACK_CLASSIFIER_DIR),
    # else the ClickMe study silently runs without feedback.
    studies = json.loads((study_run / "studies.json").read_text())
    assert Path(studies["run-clickme"]["feedback_classifier"]).is_file()
    assert served_trial_settings(study_run / "site" / "server_env.json", "run-clickme")["feedback"] is True

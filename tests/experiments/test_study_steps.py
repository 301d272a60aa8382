"""The steps of the study pipeline on hand-made inputs: image counts, the simulated participants,
exemplar lookup, the maps shown, the recovered d', the alignment table and the report. The whole
pipeline's outputs are checked in test_pipelines.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from analysis import judgments, synthetic_exports
from experiments import modelmaps
from experiments.study_pipeline import (
    attribution_checkpoint,
    exemplar_images,
    image_counts,
    maps_to_show,
    method_order,
    read_alignment,
    realfake_recovery,
    simulated_participants,
    study_report,
)
from models.data import ImageDataset

CFG = {"trials_per_participant": 12, "clickme_participants": 6, "realfake_participants": 10,
       "observer_dprime": 1.5, "n_boot": 50, "workers": 2}


def test_image_counts_give_each_clickme_image_about_three_participants():
    assert image_counts(CFG) == (12, 24, 40)
    # never fewer images than one participant's trials: nobody sees an image twice
    assert image_counts({**CFG, "clickme_participants": 2, "realfake_participants": 1}) == (12, 12, 12)


def test_simulated_participants_are_clickers_and_observers_with_the_profiles_dprime():
    sims = simulated_participants(CFG, seed=7)
    assert list(sims) == ["run-clickme", "run-realfake"]
    click, rf = sims["run-clickme"], sims["run-realfake"]
    assert (click.behaviour, click.n, click.seed) == ("clicker", 6, 7)
    assert (rf.behaviour, rf.n, rf.seed, rf.dprime) == ("observer", 10, 7, 1.5)


def test_exemplar_images_look_up_each_classes_exemplar():
    images = torch.arange(4.0).view(4, 1, 1, 1)
    heldout = ImageDataset(images, torch.tensor([0, 0, 1, 1]), ["a", "b"], ["x/0", "x/1", "x/2", "x/3"], "x")
    out = exemplar_images(heldout, {"a": "x/1", "b": "x/2"}, ["b", "a", "b"])
    assert out.flatten().tolist() == [2.0, 1.0, 2.0]


def test_attribution_checkpoint_prefers_cfgdm():
    assert attribution_checkpoint({"ddpm": Path("d"), "cfgdm": Path("c")}) == Path("c")
    assert attribution_checkpoint({"ddpm": Path("d"), "fsdm": Path("f")}) == Path("d")


def test_maps_shown_are_those_every_method_has_in_method_order():
    first, second = modelmaps.METHODS[:2]
    model_maps = {"zz_extra": {"s1": 0, "s2": 0, "s3": 0}, second: {"s2": 0, "s3": 0}, first: {"s3": 0, "s2": 0}}
    assert maps_to_show(["s1", "s3", "s2"], model_maps) == ["s3", "s2"]
    assert maps_to_show(["s1", "s3", "s2"], model_maps, n=1) == ["s3"]
    assert method_order(model_maps) == [first, second, "zz_extra"]


def test_realfake_recovery_is_the_analysis_packages_dprime_of_the_counted_trials():
    trials = synthetic_exports.realfake_trials(synthetic_exports.stimuli(30, 30), 8, 30, 1.5, 0.0,
                                               np.random.default_rng(0))
    trials.loc[trials.index[:5], "answer"] = None  # unanswered trials do not count
    summary, by_model = realfake_recovery(trials, 1.5, n_boot=50, seed=3)
    jt = judgments.judgment_trials(trials)
    overall = judgments.sdt_table(jt, by=[], n_boot=50, seed=3).iloc[0]
    assert summary["n_trials"] == len(jt) == len(trials) - 5
    assert summary["dprime_true"] == 1.5
    assert summary["dprime"] == pytest.approx(float(overall["dprime"]))
    assert summary["dprime_lo"] <= summary["dprime"] <= summary["dprime_hi"]
    assert set(by_model["model"]) == {"ddpm", "cfgdm"}


def test_read_alignment_is_none_without_the_clickme_table(tmp_path):
    assert read_alignment(tmp_path) is None
    table = tmp_path / "run-clickme" / "tables" / "alignment_by_method.csv"
    table.parent.mkdir(parents=True)
    pd.DataFrame({"method": ["m"], "spearman": [0.3]}).to_csv(table, index=False)
    assert read_alignment(tmp_path).to_dict("records") == [{"method": "m", "spearman": 0.3}]


def test_study_report_has_every_section_and_report_paths_relative_to_the_run(tmp_path):
    sim = {"participants": 2, "completed": 2, "sent": 10, "confirmed": 10, "errors": 0, "p50_ms": 1, "p99_ms": 2}
    metrics = {
        "simulation": {"run-clickme": sim}, "export_rows": {"run-clickme": {"trials": 10}},
        "realfake": {"dprime_true": 1.5, "dprime": 1.42, "dprime_lo": 1.1, "dprime_hi": 1.8, "accuracy": 0.7,
                     "n_trials": 120},
        "clickme": {"n_images_with_map": 9, "mean_spearman_human_map_vs_ink": 0.61},
        "reports": {"run-clickme": str(tmp_path / "analysis" / "run-clickme" / "report.html")},
    }
    by_model = pd.DataFrame({"model": ["ddpm"], "dprime": [1.4], "not_shown": [0]})
    align = pd.DataFrame({"method": ["m"], "spearman": [0.3], "other": [1]})
    text = "".join(study_report("tiny", 0, metrics, by_model, ["KNOWN\n"], align, tmp_path))
    assert text.startswith("# study run (tiny profile, seed 0)")
    assert "recovered d' = 1.42 (95% CI 1.10 to 1.80), accuracy 0.70 over 120 trials" in text
    assert "9 images with >= 2 participants; mean Spearman(human map, ink) = 0.61" in text
    assert "KNOWN\n" in text and "Human vs model map alignment" in text and "not_shown" not in text
    assert "- `analysis/run-clickme/report.html`" in text
    assert "Human vs model map alignment" not in "".join(
        study_report("tiny", 0, metrics, by_model, [], None, tmp_path))

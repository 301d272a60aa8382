"""The steps of the facade pipeline on hand-made inputs: seeded subsets, the pooled real-vs-fake
set, test predictions, the fooling tables, the saliency picks and the metrics. The whole
pipeline's outputs are checked in test_pipelines.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from experiments.facade import (
    Pool,
    facade_metrics,
    fooling_tables,
    matched_reals,
    most_fooling,
    pooled_set,
    predict_test_part,
    saliency_picks,
    subsample,
)


def _fakes(n: int) -> tuple[pd.DataFrame, torch.Tensor]:
    table = pd.DataFrame({"model": ["ddpm", "cfgdm"] * (n // 2), "guidance": [0.0, 1.0] * (n // 2),
                          "class_label": [f"c{k % 3}" for k in range(n)],
                          "stimulus_id": [f"s{k:02d}" for k in range(n)], "source": "model"})
    return table, torch.full((n, 1, 4, 4), 0.5) + torch.arange(n).view(n, 1, 1, 1)


def test_subsample_keeps_small_index_sets_and_sorts_a_seeded_subset():
    idx = np.array([3, 8, 9])
    assert subsample(idx, 3, np.random.default_rng(0)) is idx
    picked = subsample(np.arange(10, 30), 5, np.random.default_rng(1))
    assert picked.tolist() == sorted(np.random.default_rng(1).choice(np.arange(10, 30), 5, replace=False))
    assert len(set(picked.tolist())) == 5


def test_matched_reals_are_as_many_as_the_fakes_and_in_order():
    reals = torch.arange(10.0).view(10, 1, 1, 1)
    four = matched_reals(reals, 4, np.random.default_rng(0)).flatten().tolist()
    assert len(four) == 4 and four == sorted(four)
    assert matched_reals(reals, 50, np.random.default_rng(0)).flatten().tolist() == list(range(10))


def test_pooled_set_puts_matched_reals_first_and_caps_the_fakes():
    table, fakes = _fakes(12)
    reals = -torch.ones(20, 1, 4, 4)
    pool = pooled_set(table, fakes, reals, max_pooled=8, rng=np.random.default_rng(0))
    assert (pool.n_real, pool.n_fake) == (8, 8)
    assert pool.labels.tolist() == [0] * 8 + [1] * 8
    assert torch.equal(pool.images[:8], reals[:8])
    kept = pool.meta["stimulus_id"].iloc[8:].tolist()
    assert kept == sorted(kept) and set(kept) <= set(table["stimulus_id"])
    assert torch.equal(pool.images[8:, 0, 0, 0], torch.tensor([float(s[1:]) + 0.5 for s in kept]))
    assert (pool.meta["model"].iloc[:8] == "").all() and pool.meta["guidance"].iloc[:8].isna().all()


class _Fixed(nn.Module):
    """Logits whose fake probability is the image's mean pixel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = x.flatten(1).mean(1).clamp(1e-6, 1 - 1e-6)
        return torch.stack([torch.log(1 - p), torch.log(p)], 1)


def test_predict_test_part_labels_the_test_rows():
    images = torch.tensor([0.2, 0.9, 0.6, 0.1]).view(4, 1, 1, 1).expand(4, 1, 4, 4).contiguous()
    meta = pd.DataFrame({"model": ["", "", "ddpm", "ddpm"], "guidance": [np.nan, np.nan, 0.0, 1.0],
                         "class_label": ["", "", "c0", "c1"], "stimulus_id": [None, None, "s0", "s1"]})
    pool = Pool(images, torch.tensor([0, 0, 1, 1]), meta, 2, 2)
    out = predict_test_part(_Fixed(), pool, torch.tensor([1, 2, 3]), "lenet", torch.device("cpu"))
    assert out["classifier"].unique().tolist() == ["CNN"]
    assert out["p_fake"].tolist() == pytest.approx([0.9, 0.6, 0.1], abs=1e-5)
    assert out["said_fake"].tolist() == [True, True, False]
    assert out["is_fake"].tolist() == [False, True, True]
    assert out["stimulus_id"].tolist()[1:] == ["s0", "s1"]


def _pred() -> pd.DataFrame:
    return pd.DataFrame({
        "classifier": ["CNN"] * 6,
        "model": ["", "", "ddpm", "ddpm", "cfgdm", "cfgdm"],
        "guidance": [np.nan, np.nan, 0.0, 0.0, 2.0, 2.0],
        "class_label": ["", "", "a", "b", "a", "a"],
        "said_fake": [True, False, False, True, False, False],
        "is_fake": [False, False, True, True, True, True],
    })


def test_fooling_tables_count_fakes_judged_real():
    by_model, by_class, real_err = fooling_tables(_pred())
    assert by_model.set_index("model_w")["fooled_rate"].to_dict() == {"cfgdm w=2": 1.0, "ddpm w=0": 0.5}
    assert by_model["n"].tolist() == [2, 2]
    assert by_class.set_index("class_label")[["fooled_rate", "n"]].to_dict("index") == {
        "a": {"fooled_rate": 1.0, "n": 3}, "b": {"fooled_rate": 0.0, "n": 1}}
    assert real_err.to_dict() == {"CNN": 0.5}


def test_most_fooling_keeps_each_classifiers_top_rows():
    table = pd.DataFrame({"classifier": ["A"] * 4 + ["B"], "fooled_rate": [0.1, 0.9, 0.5, 0.7, 0.2]})
    top = most_fooling(table, n=2)
    assert top.groupby("classifier")["fooled_rate"].apply(list).to_dict() == {"A": [0.9, 0.7], "B": [0.2]}


def test_saliency_picks_take_the_first_reals_then_the_first_fakes():
    labels = torch.tensor([1, 0, 0, 1, 1, 0, 0])
    test_idx = torch.tensor([6, 0, 2, 3, 4, 5])
    assert saliency_picks(labels, test_idx, 3).tolist() == [6, 2, 0]
    assert saliency_picks(labels, test_idx, 4).tolist() == [6, 2, 0, 3]


def test_facade_metrics_report_full_data_accuracy_only_at_the_largest_fraction():
    sweep = pd.DataFrame({"model": ["ddpm", "ddpm"], "arch": ["lenet", "lenet"], "fraction": [0.5, 1.0],
                          "test_accuracy": [0.6, 0.8]})
    by_model, by_class, real_err = fooling_tables(_pred())
    pool = Pool(torch.zeros(6, 1, 1, 1), torch.zeros(6, dtype=torch.long), pd.DataFrame(), 3, 3)
    m = facade_metrics(sweep, by_model, by_class, {"CNN": 0.75}, real_err, pool, 4)
    assert m["test_accuracy_full_data"] == {"ddpm/CNN": 0.8}
    assert (m["n_real"], m["n_fake"], m["n_test"]) == (3, 3, 4)
    assert m["most_fooling_model_guidance"][0]["model_w"] == "cfgdm w=2"

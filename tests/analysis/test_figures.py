"""Figures are functions of tidy tables that return a matplotlib Figure showing those numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis import figures


def test_judgment_figure_draws_one_bar_per_group_at_the_table_values():
    t = pd.DataFrame({"model": ["ddpm", "cfgdm", "fsdm"], "dprime": [1.0, 0.5, 2.0],
                      "dprime_lo": [0.8, 0.3, 1.5], "dprime_hi": [1.2, 0.7, 2.5],
                      "hype_inf": [0.3, 0.4, 0.1], "hype_inf_lo": [0.2, 0.3, 0.05],
                      "hype_inf_hi": [0.35, 0.45, 0.15]})
    fig = figures.judgment_figure(t, ["model"])
    assert isinstance(fig, Figure)
    ax1, ax2 = fig.axes
    assert [p.get_height() for p in ax1.patches] == [1.0, 0.5, 2.0]
    assert [p.get_height() for p in ax2.patches] == [0.3, 0.4, 0.1]
    assert [lab.get_text() for lab in ax1.get_xticklabels()] == ["ddpm", "cfgdm", "fsdm"]


def test_curves_scatter_maps_and_exposure_figures():
    curves = pd.DataFrame({"model": ["m", "m", "human", "human"], "guidance": [1.0, 1.0, np.nan,
                                                                               np.nan],
                           "bin": [0, 1, 0, 1], "originality": [1.0, 2.0, 1.5, 2.5],
                           "recognizability": [0.9, 0.6, 0.95, 0.8],
                           "recognizability_se": [0.05] * 4})
    fig = figures.generalization_figure(curves, ["model", "guidance"])
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["human", "m w=1"]
    pts = curves.assign(diversity=[0.1, 0.2, 0.3, 0.4])
    assert len(figures.diversity_recognizability_figure(pts, ["model"]).axes[0].collections) == 2
    human = np.random.default_rng(0).random((3, 4, 4))
    fig = figures.maps_side_by_side(human, {"a": human, "b": human}, ["x", "y", "z"])
    assert len(fig.axes) == 9
    fig = figures.maps_side_by_side(human, {"a": human}, ["x", "y", "z"], images=human)
    assert [ax.get_title() for ax in fig.axes[:3]] == ["stimulus", "human", "a"] and len(fig.axes) == 9
    acc = pd.DataFrame({"exposure_ms": [150.0, 250.0], "source": "real", "accuracy": [0.6, 0.8],
                        "accuracy_lo": [0.5, 0.7], "accuracy_hi": [0.7, 0.9]})
    line = figures.exposure_figure(acc).axes[0].lines[0]
    assert list(line.get_ydata()) == [0.6, 0.8]

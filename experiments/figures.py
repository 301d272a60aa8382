"""The pipelines' own figures (the analysis package draws the rest): each a function of tidy
tables or arrays that returns a matplotlib Figure; the run folder saves it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure


def sample_grid(exemplars: list[torch.Tensor], rows: list[list[torch.Tensor]], row_labels: list[str],
                col_labels: list[str]) -> Figure:
    """One row per class: its exemplar, then one sample per column (e.g. per model and guidance).
    Images (1, H, W) in [-1, 1] are drawn black ink on white, nearest-neighbour."""
    n_rows, n_cols = len(rows), 1 + max(len(r) for r in rows)
    fig = Figure(figsize=(1.1 * n_cols, 1.1 * n_rows + 0.4), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for i, (ex, samples) in enumerate(zip(exemplars, rows, strict=True)):
        for j, img in enumerate([ex, *samples]):
            ax = axes[i, j]
            ax.imshow(-img[0].numpy(), cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(["exemplar", *col_labels][j], fontsize=7)
        axes[i, 0].set_ylabel(row_labels[i], fontsize=6)
    return fig


def recognizability_by_guidance(summary: pd.DataFrame) -> Figure:
    """Recognizability (with its SE) against the guidance scale, one line per model; the human
    drawings' recognizability as a dashed horizontal line. summary: model, guidance,
    recognizability, recognizability_se (human rows have model 'human')."""
    fig = Figure(figsize=(4.6, 3.3), layout="constrained")
    ax = fig.subplots()
    for model, g in summary.loc[summary["model"] != "human"].groupby("model", sort=True):
        g = g.sort_values("guidance")
        ax.errorbar(g["guidance"], g["recognizability"], yerr=g["recognizability_se"], marker="o",
                    capsize=2, label=str(model))
    human = summary.loc[summary["model"] == "human", "recognizability"]
    if len(human):
        ax.axhline(float(human.iloc[0]), color="black", ls="--", lw=1, label="human drawings")
    ax.set_xlabel("guidance scale w")
    ax.set_ylabel("recognizability (one-shot critic)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7)
    return fig


def fraction_sweep_figure(sweep: pd.DataFrame) -> Figure:
    """Real-vs-fake test accuracy against the share of training data, one line per (model,
    arch); train accuracy dotted. sweep: model, arch, fraction, train_accuracy, test_accuracy."""
    fig = Figure(figsize=(5.2, 3.4), layout="constrained")
    ax = fig.subplots()
    for i, ((model, arch), g) in enumerate(sweep.groupby(["model", "arch"], sort=True)):
        g = g.sort_values("fraction")
        color = f"C{i % 10}"
        ax.plot(g["fraction"], g["test_accuracy"], marker="o", color=color, label=f"{model} {arch}")
        ax.plot(g["fraction"], g["train_accuracy"], ls=":", color=color)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("fraction of training data")
    ax.set_ylabel("accuracy (solid: test, dotted: train)")
    ax.set_ylim(0.3, 1.02)
    ax.legend(fontsize=7)
    return fig


def saliency_figure(images: torch.Tensor, maps: dict[str, np.ndarray], labels: list[str]) -> Figure:
    """Images (N, 1, H, W) with one row per image and one column per map method (N, H, W)."""
    cols = ["image", *maps]
    n = images.shape[0]
    fig = Figure(figsize=(1.3 * len(cols), 1.3 * n + 0.3), layout="constrained")
    axes = fig.subplots(n, len(cols), squeeze=False)
    for i in range(n):
        for j, name in enumerate(cols):
            ax = axes[i, j]
            if name == "image":
                ax.imshow(-images[i, 0].numpy(), cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
            else:
                ax.imshow(maps[name][i], cmap="inferno", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=7)
        axes[i, 0].set_ylabel(labels[i], fontsize=6)
    return fig


def fooling_figure(table: pd.DataFrame, by: str) -> Figure:
    """Bars of the share of fakes judged real (the fooling rate) per `by` value and classifier.
    table: classifier, `by`, fooled_rate, n."""
    fig = Figure(figsize=(max(4.5, 0.35 * table[by].nunique() * table["classifier"].nunique() + 2), 3.2),
                 layout="constrained")
    ax = fig.subplots()
    keys = sorted(table[by].astype(str).unique())
    clfs = sorted(table["classifier"].unique())
    width = 0.8 / len(clfs)
    for k, clf in enumerate(clfs):
        g = table.loc[table["classifier"] == clf]
        g = g.set_index(g[by].astype(str))
        vals = [float(g.loc[key, "fooled_rate"]) if key in g.index else np.nan for key in keys]
        ax.bar(np.arange(len(keys)) + k * width, vals, width, label=clf)
    ax.set_xticks(np.arange(len(keys)) + 0.4 - width / 2, keys, rotation=40, ha="right", fontsize=7)
    ax.set_ylabel("fakes judged real")
    ax.set_xlabel(by)
    ax.legend(fontsize=7)
    return fig

"""Figures: each a function of tidy tables (or maps) returning a matplotlib Figure.

Figures are built with matplotlib.figure.Figure directly (no pyplot state), so they are safe
to make in tests, servers and loops; the caller saves them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def _label(row: pd.Series, by: list[str]) -> str:
    parts = []
    for col in by:
        v = row[col]
        if isinstance(v, float) and np.isnan(v):
            continue
        if v == "":
            continue
        parts.append(f"w={v:g}" if col == "guidance" else str(v))
    return " ".join(parts) or "all"


def _err(df: pd.DataFrame, col: str) -> np.ndarray | None:
    if f"{col}_lo" not in df or f"{col}_hi" not in df:
        return None
    return np.abs(np.vstack([df[col] - df[f"{col}_lo"], df[f"{col}_hi"] - df[col]]))


def maps_side_by_side(human: np.ndarray, models: dict[str, np.ndarray],
                      stimulus_ids: list[str], max_images: int = 6,
                      images: np.ndarray | None = None) -> Figure:
    """Human and model maps for the same images: one row per image, one column per source,
    after the stimulus itself when `images` is given.

    human: (n, H, W); models: {method: (n, H, W)} aligned with stimulus_ids (n,); images:
    (n, H, W) stimuli, ink bright (shown in grey).
    """
    n = min(len(stimulus_ids), max_images)
    cols = (["stimulus"] if images is not None else []) + ["human", *models]
    fig = Figure(figsize=(1.8 * len(cols), 1.8 * max(n, 1)), layout="constrained")
    axes = fig.subplots(max(n, 1), len(cols), squeeze=False)
    for i in range(n):
        for j, name in enumerate(cols):
            m = images[i] if name == "stimulus" else human[i] if name == "human" else models[name][i]
            ax = axes[i, j]
            ax.imshow(m, cmap="gray" if name == "stimulus" else "inferno", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=8)
            if j == 0:
                ax.set_ylabel(str(stimulus_ids[i]), fontsize=6)
    return fig


def alignment_figure(summary: pd.DataFrame, metric: str = "alignment") -> Figure:
    """Bars of `metric` per method (and model, when present) with their bootstrap CIs.

    summary: rows of `summarise_alignment` (method, [model], metric, metric_lo, metric_hi).
    """
    by = [c for c in ("method", "model") if c in summary.columns]
    labels = [_label(r, by) for _, r in summary.iterrows()]
    fig = Figure(figsize=(max(4, 0.8 * len(labels) + 2), 3.2), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(labels))
    ax.bar(x, summary[metric], yerr=_err(summary, metric), capsize=3, color="tab:blue")
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("Spearman / ceiling" if metric == "alignment" else metric)
    ax.axhline(1.0 if metric == "alignment" else 0.0, color="grey", lw=0.8, ls="--")
    ax.set_title("Human-model map alignment (95% CI over images)")
    return fig


def judgment_figure(table: pd.DataFrame, by: list[str]) -> Figure:
    """d' and HYPE-infinity error rate per group with bootstrap CIs (rows of sdt_table)."""
    labels = [_label(r, by) for _, r in table.iterrows()]
    fig = Figure(figsize=(max(6, 1.0 * len(labels) + 3), 3.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    x = np.arange(len(labels))
    ax1.bar(x, table["dprime"], yerr=_err(table, "dprime"), capsize=3, color="tab:purple")
    ax1.set_ylabel("d' (fake = signal)")
    ax2.bar(x, table["hype_inf"], yerr=_err(table, "hype_inf"), capsize=3, color="tab:orange")
    ax2.set_ylabel("error rate (HYPE-inf)")
    ax2.axhline(0.5, color="grey", lw=0.8, ls="--")
    for ax in (ax1, ax2):
        ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
    fig.suptitle("Real-or-fake judgments (95% CI)")
    return fig


def exposure_figure(acc: pd.DataFrame) -> Figure:
    """Accuracy against exposure time, one line per source (rows of accuracy_by_exposure)."""
    fig = Figure(figsize=(4.5, 3.2), layout="constrained")
    ax = fig.subplots()
    for source, g in acc.groupby("source", sort=True):
        ax.errorbar(g["exposure_ms"], g["accuracy"], yerr=_err(g, "accuracy"), marker="o",
                    capsize=2, label=str(source))
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("exposure (ms)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    return fig


def generalization_figure(curves: pd.DataFrame, by: list[str]) -> Figure:
    """Recognizability against originality per group; the `human` model drawn dashed black."""
    fig = Figure(figsize=(5, 3.6), layout="constrained")
    ax = fig.subplots()
    for _, g in curves.groupby(by, sort=True, dropna=False):
        row = g.iloc[0]
        human = row.get("model") == "human"
        ax.errorbar(g["originality"], g["recognizability"], yerr=g.get("recognizability_se"),
                    marker="o", ms=3, capsize=2, label=_label(row, by),
                    color="black" if human else None, ls="--" if human else "-")
    ax.set_xlabel("originality (feature distance to exemplar)")
    ax.set_ylabel("recognizability (one-shot accuracy)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7)
    return fig


def diversity_recognizability_figure(points: pd.DataFrame, by: list[str]) -> Figure:
    """The diversity-vs-recognizability scatter: one point per class, one colour per group."""
    fig = Figure(figsize=(5, 3.6), layout="constrained")
    ax = fig.subplots()
    for _, g in points.groupby(by, sort=True, dropna=False):
        ax.scatter(g["diversity"], g["recognizability"], s=14, label=_label(g.iloc[0], by))
    ax.set_xlabel("diversity (mean feature SD)")
    ax.set_ylabel("recognizability")
    ax.legend(fontsize=7)
    return fig


def agreement_figure(per_stimulus: pd.DataFrame) -> Figure:
    """Human accuracy per stimulus, split by whether each classifier was right on it."""
    fig = Figure(figsize=(5, 3.2), layout="constrained")
    ax = fig.subplots()
    clfs = sorted(per_stimulus["classifier"].unique())
    for i, clf in enumerate(clfs):
        g = per_stimulus.loc[per_stimulus["classifier"] == clf]
        for j, right in enumerate((1.0, 0.0)):
            v = g.loc[g["classifier_correct"] == right, "human_accuracy"].dropna()
            if len(v):
                ax.boxplot(v, positions=[i * 3 + j], widths=0.8)
    ax.set_xticks([i * 3 + 0.5 for i in range(len(clfs))], clfs, fontsize=8)
    ax.set_ylabel("human accuracy per stimulus")
    ax.set_title("left: classifier right, right: classifier wrong", fontsize=8)
    return fig

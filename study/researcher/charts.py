"""The study page's charts: plain data in, SVG text out.

Figures are matplotlib.figure.Figure objects saved by matplotlib's SVG backend, never pyplot,
so that the threads of a web server share no drawing state. Each chart says in words when it
has nothing to show yet. Every SVG carries a <title> (metadata) saying what it shows.
"""

from __future__ import annotations

import datetime as dt
import io
import math

import numpy as np
import pandas as pd
from matplotlib import dates as mdates
from matplotlib.figure import Figure

SERIES_COLOURS = {"started": "#4c72b0", "completed": "#55a868", "returned": "#dd8452"}
SERIES_WIDTHS = {"started": 4.0}  # wider: a series equal to it (all completed) leaves it visible
HEAT_ALPHA = 0.6  # the stimulus stays visible under the heat map


def to_svg(fig: Figure, title: str) -> str:
    """The figure as SVG text, with `title` as its <title> and metadata, without a creation
    date."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Title": title, "Date": None})
    return buf.getvalue()


def message_svg(text: str, title: str, size: tuple[float, float] = (6.0, 2.4)) -> str:
    """A chart-sized picture holding one sentence (no data yet, or why none can be shown)."""
    fig = Figure(figsize=size)
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=12, color="#555555", wrap=True)
    return to_svg(fig, f"{title}: {text}")


def cumulative(points: list[tuple[dt.datetime, int]], start: dt.datetime | None = None,
               end: dt.datetime | None = None) -> tuple[list[dt.datetime], list[int]]:
    """Running totals of (time, count) points for a step chart: 0 at `start` (when earlier than
    the first point), the total after each time, and the last total again at `end` (when later
    than the last point) so the line spans the chart."""
    times, totals, total = [], [], 0
    if start is not None and (not points or start < min(points)[0]):
        times, totals = [start], [0]
    for when, n in sorted(points):
        total += n
        if times and times[-1] == when:
            totals[-1] = total
        else:
            times.append(when)
            totals.append(total)
    if end is not None and times and end > times[-1]:
        times.append(end)
        totals.append(total)
    return times, totals


def timeline_svg(series: dict[str, list[tuple[dt.datetime, int]]]) -> str:
    """Participants started, completed and returned over time (cumulative steps, UTC)."""
    title = "Participants over time"
    stamps = [when for points in series.values() for when, _ in points]
    if not stamps:
        return message_svg("No participants yet.", title)
    minute = dt.timedelta(minutes=1)  # the points count the participants of a minute
    start, end = min(stamps) - minute, max(stamps) + minute
    fig = Figure(figsize=(6.0, 2.8), layout="constrained")
    ax = fig.subplots()
    for name, points in series.items():
        times, totals = cumulative(points, start, end)
        ax.step(times, totals, where="post", label=f"{name} ({totals[-1]})",
                color=SERIES_COLOURS.get(name), lw=SERIES_WIDTHS.get(name, 1.8))
    ax.set_xlim(start, end)
    ax.set_ylim(bottom=0)
    locator = mdates.AutoDateLocator(maxticks=6)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("participants")
    ax.set_xlabel("time (UTC)")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.set_title(title, fontsize=10)
    return to_svg(fig, title)


def group_label(model: str, guidance: float) -> str:
    """'cfgdm w=1.5'; a group without guidance is named by its model alone."""
    if isinstance(guidance, float) and math.isnan(guidance):
        return model or "all"
    return f"{model} w={guidance:g}"


def _yerr(table: pd.DataFrame, col: str) -> np.ndarray | None:
    lo, hi = f"{col}_lo", f"{col}_hi"
    if lo not in table or hi not in table:
        return None
    err = np.vstack([table[col] - table[lo], table[hi] - table[col]])
    return np.nan_to_num(np.abs(err))


def judgment_svg(table: pd.DataFrame) -> str:
    """Accuracy and d' per model and guidance with their 95% CIs (rows of
    analysis.judgments.sdt_table by model and guidance)."""
    title = "Real-or-fake judgments by model and guidance"
    if table.empty:
        return message_svg("No answers to generated images yet.", title)
    labels = [group_label(m, g) for m, g in zip(table["model"], table["guidance"], strict=True)]
    x = np.arange(len(labels))
    fig = Figure(figsize=(max(6.0, 1.1 * len(labels) + 2.5), 2.8), layout="constrained")
    ax_acc, ax_d = fig.subplots(1, 2)
    ax_acc.errorbar(x, table["accuracy"], yerr=_yerr(table, "accuracy"), fmt="o", capsize=4,
                    color="#4c72b0")
    ax_acc.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax_acc.set_ylim(0, 1)
    ax_acc.set_ylabel("accuracy")
    ax_d.errorbar(x, table["dprime"], yerr=_yerr(table, "dprime"), fmt="o", capsize=4,
                  color="#8172b3")
    ax_d.axhline(0.0, color="grey", lw=0.8, ls="--")
    ax_d.set_ylabel("d' (fake = signal)")
    for ax in (ax_acc, ax_d):
        ax.set_xticks(x, labels, rotation=20, ha="right", fontsize=8)
        ax.set_xlim(-0.5, len(labels) - 0.5)
    n = int(table["n_participants"].max())
    fig.suptitle(f"{title} (95% CI, {n} participant{'s' if n != 1 else ''})", fontsize=10)
    return to_svg(fig, title)


def heatmap_svg(image: np.ndarray, heat: np.ndarray | None, caption: str) -> str:
    """The stimulus in grey under its click heat map (semi-transparent, scaled to its maximum);
    the stimulus alone, captioned 'no clicks yet', before the first click."""
    h, w = image.shape
    side = 4.0
    fig = Figure(figsize=(side, side * h / w + 0.4))
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.96 * side * h / w / (side * h / w + 0.4)))
    ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    peak = float(np.nanmax(heat)) if heat is not None and heat.size else 0.0
    if heat is not None and peak > 0:  # unclicked pixels stay clear: the stimulus as it is
        ax.imshow(np.ma.masked_less_equal(heat / peak, 0.0), cmap="plasma", vmin=0, vmax=1,
                  alpha=HEAT_ALPHA, interpolation="nearest")
    else:
        caption = f"{caption}: no clicks yet"
    ax.set_axis_off()
    fig.text(0.5, 0.985, caption, ha="center", va="top", fontsize=13)
    return to_svg(fig, f"Click heat map: {caption}")

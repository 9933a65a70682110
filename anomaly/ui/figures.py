"""The figures of the review page and the report, drawn by matplotlib as PNG bytes.

matplotlib's ``Figure`` is used directly, not pyplot: no global state, so the web server's threads
can draw at once, and no display is needed. Each figure sets fixed margins rather than saving with
``bbox_inches="tight"``, which draws the whole figure twice to measure it (a third of the time of a
sensor plot), and PNGs are written at zlib level 1: 10-20% larger, encoded in a fraction of
the time.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator

THRESHOLD_COLOUR = "#b00020"


def png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


def data_uri(picture: bytes) -> str:
    """A PNG as a ``data:`` URI, so a report is one file that opens anywhere."""
    return "data:image/png;base64," + base64.b64encode(picture).decode("ascii")


def histogram(groups: Mapping[str, Sequence[float]], threshold: float | None, title: str = "") -> bytes:
    """Score histograms of each group on shared bins, with the threshold as a vertical line."""
    fig = Figure(figsize=(7, 3.2), dpi=100)
    fig.subplots_adjust(left=0.1, right=0.97, top=0.9, bottom=0.15)
    ax = fig.subplots()
    values = [np.asarray(v, float) for v in groups.values() if len(v)]
    if values:
        pooled = np.concatenate(values)
        bins = np.histogram_bin_edges(pooled[np.isfinite(pooled)], bins=40)
        for label, scores in groups.items():
            if len(scores):
                # One filled outline per group, where ``ax.hist`` would draw a rectangle per bin.
                counts, _ = np.histogram(np.asarray(scores, float), bins)
                ax.stairs(counts, bins, fill=True, alpha=0.6, label=f"{label} ({len(scores)})")
    if threshold is not None:
        ax.axvline(threshold, color=THRESHOLD_COLOUR, linestyle="--", label=f"threshold {threshold:.3g}")
    ax.set_xlabel("score")
    ax.set_ylabel("count")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize="small")
    return png(fig)


def series(
    times: Sequence[datetime | int],
    readings: np.ndarray,
    scores: Sequence[float],
    threshold: float,
    *,
    marked: datetime | int | None = None,
    channels: Sequence[str] | None = None,
    title: str = "",
) -> bytes:
    """The channels of a sensor window over time above its score and the threshold; ``marked`` is the event.

    Most of the time of a figure like this is matplotlib laying out text: every tick is a label to
    measure and an object to build, an axes title or an automatically placed axis label makes it
    measure every tick label again, and ``autofmt_xdate`` rotates and measures each date. So each
    axis asks for a few ticks, the upper panel has no x ticks at all (the lower spans the same times,
    its dates written by ``ConciseDateFormatter``: short, unrotated, the day once at the corner), axis labels sit at fixed places beside tick labels kept short by scientific notation,
    the title is figure text, and one legend names both panels' lines: about half the drawing time
    of the default figure, at the same size.
    """
    fig = Figure(figsize=(9, 5), dpi=100)
    fig.subplots_adjust(left=0.1, right=0.98, top=0.93, bottom=0.1, hspace=0.08)
    top, bottom = fig.subplots(2, 1, height_ratios=[2, 1])
    readings = np.asarray(readings, float).reshape(len(times), -1)
    for c in range(readings.shape[1]):
        top.plot(times, readings[:, c], label=channels[c] if channels else f"channel {c}")
    top.set_ylabel("reading")
    bottom.plot(times, scores, color="black", marker=".", label="score")
    bottom.axhline(threshold, color=THRESHOLD_COLOUR, linestyle="--", label=f"threshold {threshold:.3g}")
    bottom.set_ylabel("score")
    if marked is not None:
        for ax in (top, bottom):
            ax.axvline(marked, color="#ff9800", linewidth=2, alpha=0.7)
    if times and isinstance(times[0], datetime):
        dates = AutoDateLocator(minticks=3, maxticks=7)
        bottom.xaxis.set_major_locator(dates)
        bottom.xaxis.set_major_formatter(ConciseDateFormatter(dates))
    else:
        bottom.xaxis.set_major_locator(MaxNLocator(8, integer=True))
    bottom.set_xlim(
        top.get_xlim()
    )  # the readings span every time; the scores may not (a window's are NaN but its last)
    top.xaxis.set_major_locator(NullLocator())
    for ax, ticks in ((top, 5), (bottom, 3)):
        ax.yaxis.set_major_locator(MaxNLocator(ticks))
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4), useOffset=False)
        ax.yaxis.set_label_coords(-0.07, 0.5)
        ax.xaxis.set_label_coords(0.5, -0.1)
    lines = top.get_legend_handles_labels()
    more = bottom.get_legend_handles_labels()
    top.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize="small", ncols=2)
    fig.text(0.5, 0.965, title, ha="center", va="center", fontsize="large")
    return png(fig)


def curve(x: np.ndarray, y: np.ndarray, *, xlabel: str, ylabel: str, title: str, diagonal: bool = False) -> bytes:
    """One ROC or precision-recall curve."""
    fig = Figure(figsize=(4.2, 4), dpi=100)
    fig.subplots_adjust(left=0.16, right=0.95, top=0.92, bottom=0.12)
    ax = fig.subplots()
    ax.plot(x, y, color="#1565c0")
    if diagonal:
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return png(fig)

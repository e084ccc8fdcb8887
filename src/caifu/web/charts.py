"""Charts as inline SVG (matplotlib, no browser-side JavaScript, nothing fetched).

Text in a chart stays text (``svg.fonttype: none``) so the browser draws it with its own
fonts; labels are ids and numbers, the Chinese names sit in the HTML around the charts.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display, ever

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

PALETTE = ("#2f6db5", "#e07b39", "#3a9e6f", "#c44e52", "#8172b3", "#937860", "#da8bc3",
           "#8c8c8c")
plt.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False,
                     "axes.spines.right": False, "axes.prop_cycle":
                     matplotlib.cycler(color=PALETTE), "svg.hashsalt": "caifu"})


def svg(fig: Any) -> str:
    """The figure as an SVG element (no XML prolog), and the figure closed."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def histogram_log(values: np.ndarray, marks: dict[str, float], xlabel: str) -> str:
    """Counts over log-spaced bins of positive values (zeros are told apart in the text)."""
    fig, ax = plt.subplots(figsize=(7.5, 2.8))
    positive = values[values > 0]
    if len(positive):
        hi = max(float(positive.max()), 10.0)
        bins = np.logspace(np.log10(max(float(positive.min()), 0.01)), np.log10(hi), 40)
        ax.hist(positive, bins=bins, color=PALETTE[0])
        ax.set_xscale("log")
        for i, (name, v) in enumerate(marks.items()):
            if v > 0:
                ax.axvline(v, color=PALETTE[1 + i], linestyle="--", linewidth=1)
                ax.annotate(f"{name} {v:,.0f}", (v, 0.95 - 0.1 * i), xycoords=("data", "axes fraction"),
                            color=PALETTE[1 + i], fontsize=8, xytext=(3, 0),
                            textcoords="offset points")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("customers")
    return svg(fig)


def grouped_bars(groups: Sequence[str], series: dict[str, Sequence[float]], xlabel: str) -> str:
    """Horizontal bars, one group per row, one colour per series."""
    n, k = len(groups), len(series)
    fig, ax = plt.subplots(figsize=(7.5, 0.22 * n * max(1.0, k / 1.5) + 0.9))
    height = 0.8 / max(k, 1)
    y = np.arange(n)
    for i, (name, values) in enumerate(series.items()):
        ax.barh(y + i * height - 0.4 + height / 2, values, height=height, label=name)
    ax.set_yticks(y, list(groups))
    ax.invert_yaxis()
    ax.axvline(0, color="#444", linewidth=0.8)
    ax.set_xlabel(xlabel)
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    return svg(fig)


def stacked_area(x: Sequence[Any], series: dict[str, Sequence[float]], ylabel: str) -> str:
    fig, ax = plt.subplots(figsize=(7.5, 3.0))
    ax.stackplot(list(x), *[list(v) for v in series.values()], labels=list(series),
                 colors=PALETTE[: len(series)])
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    fig.autofmt_xdate()
    return svg(fig)


MIN_BIN = 30  # calibration bins with fewer customers are noise, not evidence


def calibration_and_lift(targets: list[dict[str, Any]]) -> str:
    """Per target: the calibration curve of LightGBM (and the logistic baseline) against the
    diagonal — bins of at least ``MIN_BIN`` customers — and the top-decile lift of the three
    rankings."""
    n = len(targets)
    fig, axes = plt.subplots(2, max(n, 1), figsize=(2.4 * max(n, 1) + 0.5, 4.6), squeeze=False)
    for j, t in enumerate(targets):
        top, bottom = axes[0][j], axes[1][j]
        top.plot([0, 1], [0, 1], color="#bbb", linewidth=0.8)
        for i, model in enumerate(("lightgbm", "logistic")):
            curve = [c for c in t["backtest"][model]["calibration"] if c[2] >= MIN_BIN]
            if curve:
                top.plot([c[0] for c in curve], [c[1] for c in curve], marker="o",
                         markersize=3, color=PALETTE[i], label=model)
        top.set_title(t["target"], fontsize=9)
        top.set_xlabel("predicted")
        if j == 0:
            top.set_ylabel("observed")
            top.legend(fontsize=7, frameon=False)
        lifts = [t["backtest"][m]["lift_top_decile"] for m in ("lightgbm", "logistic",
                                                                "heuristic")]
        bottom.bar(["lgbm", "logit", "heur."], lifts, color=PALETTE[:3])
        bottom.axhline(1, color="#444", linewidth=0.8)
        if j == 0:
            bottom.set_ylabel("lift, top 10 %")
    fig.tight_layout()
    return svg(fig)


def quartile_bars(groups: Sequence[str], p25: Sequence[float], median: Sequence[float],
                  p75: Sequence[float], xlabel: str) -> str:
    """The middle half (p25–p75) as a bar and the median as a tick, one row per group."""
    fig, ax = plt.subplots(figsize=(7.5, 0.4 * len(groups) + 0.8))
    y = np.arange(len(groups))
    lo, mid, hi = (np.asarray(v, dtype=float) for v in (p25, median, p75))
    ax.barh(y, hi - lo, left=lo, color=PALETTE[0], alpha=0.6, height=0.5)
    ax.scatter(mid, y, color=PALETTE[1], marker="|", s=200, zorder=3)
    ax.set_yticks(y, list(groups))
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    return svg(fig)


def sparkline(values: Sequence[float | None], width: int = 160, height: int = 28) -> str:
    """A line of ``values`` as a small SVG (gaps where a value is missing), drawn directly:
    a dozen points per row of a table do not need matplotlib."""
    points = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(points) < 2:
        return ""
    lo, hi = min(v for _, v in points), max(v for _, v in points)
    span = (hi - lo) or 1.0
    step = (width - 4) / max(len(values) - 1, 1)
    xy = " ".join(f"{2 + i * step:.1f},{height - 3 - (v - lo) / span * (height - 6):.1f}"
                  for i, v in points)
    return (f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'role="img"><polyline fill="none" stroke="{PALETTE[0]}" stroke-width="1.5" '
            f'points="{xy}"/></svg>')

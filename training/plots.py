"""Evaluation plots written as PNG files.

Each function takes an output path, writes one PNG (creating parent folders) and returns the
path. Figures are built with :class:`matplotlib.figure.Figure` and rendered by the Agg canvas
directly: no ``pyplot``, no global figure registry, no GUI backend, safe in worker threads and
nothing done at import time beyond importing matplotlib.

Scores are plotted in their **native direction** (energy: lower = in-distribution) and the axis
label says which side is in-distribution; ROC curves take "higher = in-distribution" scores like
:mod:`training.metrics` (flip energy with :func:`service.scores.in_distribution_score`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from numpy.typing import ArrayLike

from service.scores import DIRECTIONS, Direction, ScoreName
from training.metrics import ReliabilityBins, auroc, fpr_at_tpr, roc_points
from training.report import METRIC_LABELS, average_over_sets

__all__ = [
    "comparison_bars",
    "logit_norm_curve",
    "reliability_diagram",
    "roc_curves",
    "score_histograms",
    "training_curves",
]

PathLike = str | os.PathLike[str]

ID_COLOR = "#1f77b4"
#: OOD sets and models cycle through these (tab10 without the in-distribution blue).
PALETTE = ("#d62728", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")
DPI = 120


def _color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _figure(width: float = 7.0, height: float = 4.5) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: PathLike) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, format="png", dpi=DPI)
    return target


def _finite(values: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size == 0 or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be a non-empty array of finite numbers")
    return array


def _direction_hint(score_name: str) -> str:
    try:
        direction = DIRECTIONS[ScoreName(score_name)]
    except ValueError:
        return ""
    if direction is Direction.HIGHER_IS_IN:
        return " (higher = in-distribution)"
    return " (lower = in-distribution)"


def score_histograms(
    id_scores: ArrayLike,
    ood_sets: Mapping[str, ArrayLike],
    score_name: str,
    path: PathLike,
    title: str | None = None,
    threshold: float | None = None,
    id_name: str = "in-distribution",
    bins: int = 60,
) -> Path:
    """Density histograms of one score: in-distribution (filled) vs each OOD set (outlines).

    All histograms share the same bins (over the pooled range), as in Figure 1 of the LogitNorm
    paper. ``threshold`` (native direction, e.g. from the manifest) is drawn as a dashed line.
    """
    ids = _finite(id_scores, "id_scores")
    sets = {name: _finite(v, f"ood_sets[{name!r}]") for name, v in ood_sets.items()}
    pooled = np.concatenate([ids, *sets.values()])
    low, high = float(pooled.min()), float(pooled.max())
    if low == high:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, bins + 1).tolist()

    figure = _figure()
    ax = figure.add_subplot()
    ax.hist(ids, bins=edges, density=True, color=ID_COLOR, alpha=0.45, label=f"{id_name} (ID)")
    for index, (name, values) in enumerate(sets.items()):
        ax.hist(
            values,
            bins=edges,
            density=True,
            histtype="step",
            linewidth=1.8,
            color=_color(index),
            label=f"{name} (OOD)",
        )
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1.2, label="threshold")
    ax.set_xlabel(f"{score_name}{_direction_hint(score_name)}")
    ax.set_ylabel("density")
    ax.set_title(title or f"{score_name}: in-distribution vs OOD")
    ax.legend(frameon=False)
    return _save(figure, path)


def reliability_diagram(
    bins: ReliabilityBins, ece: float, path: PathLike, title: str | None = None
) -> Path:
    """Accuracy per confidence bin against the diagonal, with sample counts underneath.

    ``bins`` comes from :func:`training.metrics.reliability_bins`; ``ece`` is a fraction and is
    shown in percent. Hatched red bars span the gap between a bin's mean confidence and its
    accuracy; empty bins are left out.
    """
    edges = np.asarray(bins.edges, dtype=np.float64)
    counts = np.asarray(bins.counts)
    width = np.diff(edges)
    left = edges[:-1]
    filled = counts > 0

    figure = _figure(5.5, 6.0)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.bar(
        left[filled],
        np.asarray(bins.accuracy)[filled],
        width=width[filled],
        align="edge",
        color=ID_COLOR,
        edgecolor="white",
        label="accuracy",
    )
    gap_low = np.minimum(bins.accuracy, bins.confidence)[filled]
    gap = np.abs(np.asarray(bins.accuracy) - np.asarray(bins.confidence))[filled]
    top.bar(
        left[filled],
        gap,
        bottom=gap_low,
        width=width[filled],
        align="edge",
        facecolor="none",
        edgecolor="#d62728",
        hatch="//",
        linewidth=0.8,
        label="gap to mean confidence",
    )
    top.plot(
        [0, 1], [0, 1], color="black", linestyle="--", linewidth=1, label="perfect calibration"
    )
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.set_title(title or f"Reliability diagram (ECE {100 * ece:.1f}%)")
    top.legend(loc="upper left", frameon=False)
    bottom.bar(left, counts, width=width, align="edge", color="#7f7f7f", edgecolor="white")
    bottom.set_yscale("symlog", linthresh=1)
    bottom.set_xlabel("confidence (max softmax probability)")
    bottom.set_ylabel("count")
    return _save(figure, path)


def roc_curves(
    id_scores: ArrayLike,
    ood_sets: Mapping[str, ArrayLike],
    path: PathLike,
    title: str | None = None,
    tpr: float = 0.95,
) -> Path:
    """ROC per OOD set: TPR of in-distribution inputs vs FPR of OOD inputs (ID positive).

    Scores are "higher = in-distribution". The legend gives each set's AUROC and FPR at ``tpr``;
    a dotted line marks the ``tpr`` operating point.
    """
    ids = _finite(id_scores, "id_scores")
    figure = _figure(5.5, 5.0)
    ax = figure.add_subplot()
    for index, (name, values) in enumerate(ood_sets.items()):
        ood = _finite(values, f"ood_sets[{name!r}]")
        fpr, tpr_curve = roc_points(ids, ood)
        fpr_t = fpr_at_tpr(ids, ood, tpr)
        label = f"{name} (AUROC {100 * auroc(ids, ood):.1f}%, FPR{100 * tpr:g} {100 * fpr_t:.1f}%)"
        ax.plot(
            fpr, tpr_curve, color=_color(index), linewidth=1.6, label=label, drawstyle="steps-post"
        )
        ax.plot([fpr_t], [tpr], marker="o", color=_color(index), markersize=5)
    ax.axhline(tpr, color="black", linestyle=":", linewidth=1, label=f"TPR = {100 * tpr:g}%")
    ax.plot([0, 1], [0, 1], color="#bbbbbb", linewidth=1, linestyle="--")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("FPR (fraction of OOD accepted)")
    ax.set_ylabel("TPR (fraction of in-distribution accepted)")
    ax.set_title(title or "ROC, in-distribution positive")
    ax.legend(loc="lower right", frameon=False, fontsize="small")
    return _save(figure, path)


def logit_norm_curve(
    history: Mapping[str, Sequence[float]],
    path: PathLike,
    title: str | None = None,
    log_scale: bool = False,
) -> Path:
    """Mean L2 norm of the logit vector per epoch, one line per loss (``{loss: [norm, ...]}``).

    The LogitNorm paper's key observation: under cross-entropy the norm keeps growing, which
    makes the softmax overconfident on every input; LogitNorm removes the incentive.
    """
    figure = _figure()
    ax = figure.add_subplot()
    for index, (loss, norms) in enumerate(history.items()):
        values = np.asarray(norms, dtype=np.float64)
        epochs = np.arange(1, values.size + 1)
        ax.plot(epochs, values, marker="o", markersize=3, color=_color(index), label=loss)
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean ‖f(x)‖₂ of the logits")
    ax.set_title(title or "Logit norm during training")
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return _save(figure, path)


def training_curves(
    histories: Mapping[str, Mapping[str, Sequence[float]]],
    path: PathLike,
    keys: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """One panel per quantity (e.g. ``train_loss``, ``val_accuracy``), one line per run.

    ``histories`` is ``{run name: {quantity: [value per epoch, ...]}}``. ``keys`` picks and
    orders the panels (default: every quantity, in first-seen order). Quantities whose name
    contains ``accuracy`` or ``acc`` are shown in percent when their values are fractions.
    """
    if keys is None:
        keys = list(dict.fromkeys(k for h in histories.values() for k in h))
    if not keys:
        raise ValueError("nothing to plot: no quantities in histories")
    columns = min(len(keys), 3)
    rows = -(-len(keys) // columns)
    figure = _figure(4.2 * columns, 3.4 * rows)
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    for ax, key in zip(axes, keys, strict=False):
        percent = "acc" in key.lower()
        for index, (run, history) in enumerate(histories.items()):
            if key not in history:
                continue
            values = np.asarray(history[key], dtype=np.float64)
            ax.plot(np.arange(1, values.size + 1), values, color=_color(index), label=run)
        if percent:
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, fontsize="small")
    for ax in axes[len(keys) :]:
        ax.set_visible(False)
    if title:
        figure.suptitle(title)
    return _save(figure, path)


def _bar_labels(ax: Axes, bars: Any) -> None:
    heights = [b.get_height() for b in bars]
    labels = [f"{100 * h:.1f}" if np.isfinite(h) else "" for h in heights]
    ax.bar_label(bars, labels=labels, fontsize=7, padding=2)


def comparison_bars(
    results: Mapping[str, Mapping[str, Any]],
    path: PathLike,
    metric: str = "fpr95",
    scores: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Average ``metric`` over OOD sets, grouped by score, one bar per model (i.e. per loss).

    ``results`` has the shape documented in :mod:`training.report`; averages come from
    :func:`training.report.average_over_sets`. Values are shown in percent.
    """
    models = list(results)
    if scores is None:
        scores = list(dict.fromkeys(s for r in results.values() for s in r.get("ood", {})))
    if not models or not scores:
        raise ValueError("nothing to plot: no models or no scores in results")
    group = np.arange(len(scores), dtype=np.float64)
    width = 0.8 / len(models)
    all_heights: list[float] = []
    figure = _figure(max(7.0, 3.0 + 1.6 * len(scores) * max(1, len(models) / 2)), 4.5)
    ax = figure.add_subplot()
    for index, model in enumerate(models):
        ood = results[model].get("ood", {})
        heights = [
            average_over_sets(ood[s]).get(metric, np.nan) if s in ood else np.nan for s in scores
        ]
        offsets = group - 0.4 + width * (index + 0.5)
        all_heights += heights
        bars = ax.bar(offsets, heights, width=width, color=_color(index), label=model)
        _bar_labels(ax, bars)
    ax.set_xticks(group, list(scores))
    ax.set_xlim(-0.5, len(scores) - 0.5)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    better = "lower is better" if metric.startswith("fpr") else "higher is better"
    name = METRIC_LABELS.get(metric, metric).rstrip(" ↑↓")
    ax.set_ylabel(f"average {name} over OOD sets ({better})")
    ax.set_xlabel("score")
    tallest = float(np.nanmax([*all_heights, 0.0]))
    ax.set_ylim(0, min(1.1, max(0.05, 1.15 * tallest)))
    ax.set_title(title or f"Average {name} by loss and score")
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="model")
    ax.grid(axis="y", alpha=0.3)
    return _save(figure, path)

"""OOD-detection and calibration metrics (numpy only, torch-free).

Conventions (the usual source of disagreement between papers, so stated once here and again in
each docstring):

* Every OOD metric takes **"higher = in-distribution" scores**. Pass ``msp`` and ``max_logit`` as
  they are and ``energy`` negated; :func:`service.scores.in_distribution_score` does this flip.
* **In-distribution is the positive class**, as in the LogitNorm paper (Wei et al., ICML 2022)
  and the Outlier Exposure code it inherits: FPR95 is the fraction of OOD inputs accepted when
  95% of in-distribution inputs are accepted. pytorch-ood and OpenOOD take OOD as positive and
  report different numbers for the same scores.
* Results are fractions in ``[0, 1]``; reports turn them into percentages.

AUROC and the average precisions are exact re-implementations of scikit-learn's
``roc_auc_score`` and ``average_precision_score`` (the tests compare against them), so that
training does not need scikit-learn at run time.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "OodMetrics",
    "ReliabilityBins",
    "accuracy",
    "aupr_in",
    "aupr_out",
    "auroc",
    "expected_calibration_error",
    "fpr_at_threshold",
    "fpr_at_tpr",
    "ood_metrics",
    "reliability_bins",
    "roc_points",
    "tpr_threshold",
]


def _scores(values: ArrayLike, name: str) -> NDArray[np.float64]:
    """``values`` as a non-empty, finite, 1-D float64 array, or a ValueError naming ``name``."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite (found NaN or inf)")
    return array


def _labels(values: ArrayLike, name: str) -> NDArray[np.int64]:
    """Class indices as a non-empty 1-D integer array."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} must not be empty")
    integral = np.issubdtype(array.dtype, np.integer) or (
        np.issubdtype(array.dtype, np.number)
        and np.all(np.isfinite(array))
        and np.all(array == np.round(array))
    )
    if not integral:
        raise ValueError(f"{name} must hold integer class indices")
    return array.astype(np.int64)


def _same_length(**arrays: NDArray) -> None:
    lengths = {name: a.shape[0] for name, a in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"lengths differ: {lengths}")


# --------------------------------------------------------------------------------------------
# Thresholds and FPR at a fixed TPR
# --------------------------------------------------------------------------------------------


def tpr_threshold(id_scores: ArrayLike, tpr: float = 0.95) -> float:
    """The largest threshold that accepts at least ``tpr`` of the in-distribution scores.

    With ``n`` in-distribution scores, ``k = ceil(tpr * n)``, the threshold is the ``k``-th
    largest score: ``k`` scores (more if the threshold value is tied) satisfy ``score >=
    threshold``, so the TPR is at least ``tpr``, and any higher threshold would accept fewer than
    ``k``. It is the empirical ``1 - tpr`` quantile of the in-distribution scores taken from
    the accepting side (no interpolation), and the same operating point as the first point of
    ``sklearn.metrics.roc_curve`` (ID positive) whose TPR reaches ``tpr``.

    This is the exact empirical threshold of the evaluation set. The threshold written into a
    manifest comes from :func:`service.scores.calibrate_threshold` on *validation* scores with
    linear interpolation; the two agree up to one order statistic on the same data.
    """
    ids = _scores(id_scores, "id_scores")
    if not 0.0 < tpr <= 1.0:
        raise ValueError(f"tpr must be in (0, 1], got {tpr}")
    n = ids.size
    # tpr * n in float can land just off an integer (0.95 * 100 = 95.00000000000001): snap it.
    target = tpr * n
    nearest = round(target)
    k = max(1, nearest if abs(target - nearest) <= 1e-9 * max(1.0, target) else math.ceil(target))
    descending = np.sort(ids)[::-1]
    return float(descending[k - 1])


def fpr_at_threshold(ood_scores: ArrayLike, threshold: float) -> float:
    """Fraction of OOD scores accepted at ``threshold`` (``score >= threshold``, inclusive).

    Scores are "higher = in-distribution"; in-distribution is the positive class, so accepted
    OOD inputs are the false positives.
    """
    ood = _scores(ood_scores, "ood_scores")
    return float(np.mean(ood >= threshold))


def fpr_at_tpr(id_scores: ArrayLike, ood_scores: ArrayLike, tpr: float = 0.95) -> float:
    """FPR of OOD inputs at the threshold that accepts ``tpr`` of in-distribution inputs (FPR95).

    **In-distribution is the positive class** (LogitNorm paper convention): the result is the
    fraction of OOD inputs that a detector keeping ``tpr`` of in-distribution inputs would still
    accept. Lower is better. pytorch-ood and OpenOOD treat OOD as positive and report a
    different number for the same scores.

    Both inputs are "higher = in-distribution" scores (negate energy first). The threshold is
    :func:`tpr_threshold`: the ``ceil(tpr * n)``-th largest in-distribution score, i.e. the
    largest threshold whose TPR is at least ``tpr``. Ties are accepted on both sides: the FPR
    is the fraction of OOD scores ``>=`` the threshold.
    """
    return fpr_at_threshold(ood_scores, tpr_threshold(id_scores, tpr))


# --------------------------------------------------------------------------------------------
# Threshold-free metrics
# --------------------------------------------------------------------------------------------


def _average_ranks(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """1-based ranks, ties given the mean of the ranks they span (scipy's ``rankdata`` default)."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # Start index of each run of equal values, plus the end sentinel.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], values.size]
    mean_rank = (starts + ends + 1) / 2.0  # mean of the 1-based ranks starts+1 .. ends
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def auroc(id_scores: ArrayLike, ood_scores: ArrayLike) -> float:
    """Area under the ROC curve, in-distribution positive (Mann-Whitney U / (n_id * n_ood)).

    The probability that a random in-distribution input scores higher than a random OOD input,
    ties counting 1/2. Scores are "higher = in-distribution". Equal to
    ``sklearn.metrics.roc_auc_score`` with ID labelled 1. The value is symmetric in the choice
    of positive class (swapping classes and negating scores gives the same number).
    """
    ids = _scores(id_scores, "id_scores")
    ood = _scores(ood_scores, "ood_scores")
    ranks = _average_ranks(np.concatenate([ids, ood]))
    n_id, n_ood = ids.size, ood.size
    u = ranks[:n_id].sum() - n_id * (n_id + 1) / 2.0
    return float(u / (n_id * n_ood))


def roc_points(
    id_scores: ArrayLike, ood_scores: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """ROC operating points ``(fpr, tpr)``, in-distribution positive, for plotting.

    One point per distinct score (threshold ``score >= t``, from the highest down) plus the
    origin: ``tpr`` is the fraction of in-distribution inputs accepted, ``fpr`` the fraction of
    OOD inputs accepted. Same points as ``sklearn.metrics.roc_curve(drop_intermediate=False)``.
    """
    ids = _scores(id_scores, "id_scores")
    ood = _scores(ood_scores, "ood_scores")
    scores = np.concatenate([ids, ood])
    labels = np.concatenate([np.ones(ids.size), np.zeros(ood.size)])
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    last = np.flatnonzero(np.r_[scores[1:] != scores[:-1], True])
    true_pos = np.cumsum(labels)[last]
    false_pos = last + 1.0 - true_pos
    return np.r_[0.0, false_pos / ood.size], np.r_[0.0, true_pos / ids.size]


def _average_precision(positive: NDArray[np.float64], negative: NDArray[np.float64]) -> float:
    """Step-wise average precision, ``sum_k (R_k - R_{k-1}) P_k`` over distinct thresholds.

    Identical to ``sklearn.metrics.average_precision_score`` (no interpolation; tied scores are
    one threshold).
    """
    scores = np.concatenate([positive, negative])
    labels = np.concatenate([np.ones(positive.size), np.zeros(negative.size)])
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    # Last index of each run of equal scores: one operating point per distinct threshold.
    last = np.flatnonzero(np.r_[scores[1:] != scores[:-1], True])
    true_pos = np.cumsum(labels)[last]
    predicted_pos = last + 1.0
    precision = true_pos / predicted_pos
    recall = true_pos / positive.size
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def aupr_in(id_scores: ArrayLike, ood_scores: ArrayLike) -> float:
    """Average precision with **in-distribution positive**, "higher = in-distribution" scores.

    Defined as ``sklearn.metrics.average_precision_score`` (step-wise, not trapezoidal). Its
    chance level is the in-distribution share of the pooled inputs, so it depends on the set
    sizes.
    """
    return _average_precision(_scores(id_scores, "id_scores"), _scores(ood_scores, "ood_scores"))


def aupr_out(id_scores: ArrayLike, ood_scores: ArrayLike) -> float:
    """Average precision with **OOD positive**: the scores are negated so higher = OOD.

    Takes the same "higher = in-distribution" scores as the other metrics. Defined as
    ``sklearn.metrics.average_precision_score``; chance level is the OOD share of the inputs.
    """
    ids = _scores(id_scores, "id_scores")
    ood = _scores(ood_scores, "ood_scores")
    return _average_precision(-ood, -ids)


@dataclass(frozen=True)
class OodMetrics:
    """The four OOD metrics for one (score, OOD set) pair, as fractions in ``[0, 1]``.

    ``fpr95`` lower is better (ID positive, see :func:`fpr_at_tpr`); the others higher is better.
    """

    fpr95: float
    auroc: float
    aupr_in: float
    aupr_out: float

    def as_dict(self) -> dict[str, float]:
        """``{"fpr95": ..., "auroc": ..., "aupr_in": ..., "aupr_out": ...}`` (report shape)."""
        return asdict(self)


def ood_metrics(id_scores: ArrayLike, ood_scores: ArrayLike, tpr: float = 0.95) -> OodMetrics:
    """FPR at ``tpr`` (FPR95), AUROC, AUPR-In and AUPR-Out; "higher = in-distribution" scores."""
    ids = _scores(id_scores, "id_scores")
    ood = _scores(ood_scores, "ood_scores")
    return OodMetrics(
        fpr95=fpr_at_tpr(ids, ood, tpr),
        auroc=auroc(ids, ood),
        aupr_in=aupr_in(ids, ood),
        aupr_out=aupr_out(ids, ood),
    )


# --------------------------------------------------------------------------------------------
# Classification and calibration
# --------------------------------------------------------------------------------------------


def accuracy(predictions: ArrayLike, labels: ArrayLike) -> float:
    """Fraction of ``predictions`` equal to ``labels`` (both 1-D class indices)."""
    pred = _labels(predictions, "predictions")
    true = _labels(labels, "labels")
    _same_length(predictions=pred, labels=true)
    return float(np.mean(pred == true))


@dataclass(frozen=True)
class ReliabilityBins:
    """Per-bin statistics for a reliability diagram.

    ``edges`` has ``n_bins + 1`` entries ``0, 1/n, ..., 1``; bin ``i`` holds confidences in
    ``(edges[i], edges[i+1]]`` (the first bin also takes exactly 0). ``accuracy`` and
    ``confidence`` are the bin means, **0.0 for empty bins** (check ``counts``), so the arrays
    stay finite and JSON-safe.
    """

    edges: NDArray[np.float64]
    counts: NDArray[np.int64]
    accuracy: NDArray[np.float64]
    confidence: NDArray[np.float64]

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def ece(self) -> float:
        """Expected calibration error: ``sum_b (n_b / N) * |acc_b - conf_b|``."""
        weights = self.counts / self.total
        return float(np.sum(weights * np.abs(self.accuracy - self.confidence)))

    def as_dict(self) -> dict[str, list[float] | list[int]]:
        """Plain lists, for a JSON report."""
        return {
            "edges": [float(v) for v in self.edges],
            "counts": [int(v) for v in self.counts],
            "accuracy": [float(v) for v in self.accuracy],
            "confidence": [float(v) for v in self.confidence],
        }


def reliability_bins(
    confidences: ArrayLike, predictions: ArrayLike, labels: ArrayLike, n_bins: int = 15
) -> ReliabilityBins:
    """Bin predictions by confidence into ``n_bins`` equal-width bins over ``(0, 1]``.

    ``confidences`` is the probability of the predicted class (e.g. MSP), in ``[0, 1]``.
    Bin ``i`` is ``(i/n, (i+1)/n]`` as in Guo et al. (ICML 2017); a confidence of exactly 0
    goes into the first bin rather than being dropped.
    """
    conf = _scores(confidences, "confidences")
    pred = _labels(predictions, "predictions")
    true = _labels(labels, "labels")
    _same_length(confidences=conf, predictions=pred, labels=true)
    if np.any((conf < 0.0) | (conf > 1.0)):
        raise ValueError("confidences must lie in [0, 1]")
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")

    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # side="left" on the inner edges: conf == edges[i] falls in bin i-1, i.e. bins are (lo, hi].
    index = np.searchsorted(edges[1:-1], conf, side="left")
    counts = np.bincount(index, minlength=n_bins)
    correct = np.bincount(index, weights=(pred == true).astype(np.float64), minlength=n_bins)
    conf_sum = np.bincount(index, weights=conf, minlength=n_bins)
    nonempty = counts > 0
    safe = np.where(nonempty, counts, 1)
    return ReliabilityBins(
        edges=edges,
        counts=counts.astype(np.int64),
        accuracy=np.where(nonempty, correct / safe, 0.0),
        confidence=np.where(nonempty, conf_sum / safe, 0.0),
    )


def expected_calibration_error(
    confidences: ArrayLike, predictions: ArrayLike, labels: ArrayLike, n_bins: int = 15
) -> float:
    """Expected calibration error (Guo et al., ICML 2017), a fraction in ``[0, 1]``.

    ``sum_b (n_b / N) * |accuracy_b - mean confidence_b|`` over ``n_bins`` equal-width bins on
    ``(0, 1]`` (see :func:`reliability_bins`). ``confidences`` is the probability of the
    predicted class. Lower is better.
    """
    return reliability_bins(confidences, predictions, labels, n_bins).ece()

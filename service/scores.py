"""OOD scores and threshold rules: the one numpy definition shared by training and serving.

Training calls these to calibrate thresholds on held-out in-distribution data; the service calls
the same functions to score requests and to turn a target TPR into a threshold. Because both sides
run this code, a threshold written into a manifest means the same number when it is applied.

Direction convention (say it everywhere, it is the usual source of sign bugs):

* ``msp``       maximum softmax probability, in [1/k, 1]. **Higher = more in-distribution.**
* ``max_logit`` largest raw logit.                        **Higher = more in-distribution.**
* ``energy``    free energy ``E(x) = -T * logsumexp(f / T)`` (Liu et al., NeurIPS 2020).
                **Lower = more in-distribution.**  (The "energy score" ``-E(x)`` of some papers
                is its negation.)

An input is *accepted* (treated as in-distribution) when its score is on the in-distribution side
of the threshold, inclusive: ``score >= threshold`` for higher-is-in scores, ``score <= threshold``
for energy. The true-positive rate (TPR) of a threshold is the fraction of in-distribution inputs
it accepts: in-distribution is the positive class, as in the LogitNorm paper.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.floating]


class ScoreName(StrEnum):
    """The scores the service computes for every input."""

    MSP = "msp"
    ENERGY = "energy"
    MAX_LOGIT = "max_logit"


class Direction(StrEnum):
    """Which side of a threshold counts as in-distribution."""

    HIGHER_IS_IN = "higher_is_in"
    LOWER_IS_IN = "lower_is_in"


DIRECTIONS: Final[dict[ScoreName, Direction]] = {
    ScoreName.MSP: Direction.HIGHER_IS_IN,
    ScoreName.ENERGY: Direction.LOWER_IS_IN,
    ScoreName.MAX_LOGIT: Direction.HIGHER_IS_IN,
}

#: Quantile levels stored in a manifest: 0, 0.001, ..., 1. A 0.001 grid lets the service derive
#: the threshold for any target TPR to within 0.1% of in-distribution mass without the data.
QUANTILE_LEVELS: Final[NDArray[np.float64]] = np.round(np.linspace(0.0, 1.0, 1001), 6)


def _as_logits(logits: ArrayLike) -> NDArray[np.float64]:
    """Scores are computed in float64: float32 softmax loses the tail that separates OOD inputs."""
    array = np.asarray(logits, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"logits must have shape (batch, classes), got {array.shape}")
    return array


def softmax(logits: ArrayLike, temperature: float = 1.0) -> NDArray[np.float64]:
    """Row-wise softmax of ``logits / temperature``, shifted by the row max for stability."""
    z = _as_logits(logits) / temperature
    z = z - z.max(axis=1, keepdims=True)
    exp = np.exp(z)
    return exp / exp.sum(axis=1, keepdims=True)


def logsumexp(logits: ArrayLike) -> NDArray[np.float64]:
    """Row-wise ``log(sum(exp(f)))`` without overflow."""
    z = _as_logits(logits)
    top = z.max(axis=1)
    return top + np.log(np.exp(z - top[:, None]).sum(axis=1))


def msp(logits: ArrayLike) -> NDArray[np.float64]:
    """Maximum softmax probability (Hendrycks & Gimpel, ICLR 2017). Higher = in-distribution."""
    return softmax(logits).max(axis=1)


def energy(logits: ArrayLike, temperature: float = 1.0) -> NDArray[np.float64]:
    """Free energy ``-T * logsumexp(f / T)`` (Liu et al., NeurIPS 2020). Lower = in-distribution."""
    return -temperature * logsumexp(_as_logits(logits) / temperature)


def max_logit(logits: ArrayLike) -> NDArray[np.float64]:
    """Largest raw logit (Hendrycks et al., ICML 2022). Higher = in-distribution."""
    return _as_logits(logits).max(axis=1)


def compute_scores(
    logits: ArrayLike, energy_temperature: float = 1.0
) -> dict[ScoreName, NDArray[np.float64]]:
    """All serving scores for a batch of logits, keyed by score name."""
    z = _as_logits(logits)
    return {
        ScoreName.MSP: msp(z),
        ScoreName.ENERGY: energy(z, energy_temperature),
        ScoreName.MAX_LOGIT: max_logit(z),
    }


def in_distribution_score(values: ArrayLike, score: ScoreName) -> NDArray[np.float64]:
    """The score flipped, if needed, so that higher always means in-distribution.

    Metrics (AUROC, FPR95) take this form so one code path serves every score.
    """
    array = np.asarray(values, dtype=np.float64)
    return array if DIRECTIONS[ScoreName(score)] is Direction.HIGHER_IS_IN else -array


def accepts(values: ArrayLike, threshold: float, score: ScoreName) -> NDArray[np.bool_]:
    """True where an input is on the in-distribution side of ``threshold`` (inclusive)."""
    array = np.asarray(values, dtype=np.float64)
    if DIRECTIONS[ScoreName(score)] is Direction.HIGHER_IS_IN:
        return array >= threshold
    return array <= threshold


def tpr_quantile_level(target_tpr: float, score: ScoreName) -> float:
    """The quantile level of in-distribution scores whose value accepts ``target_tpr`` of them.

    For a higher-is-in score, keeping the top 95% means cutting at the 5% quantile; for energy
    (lower-is-in), keeping the bottom 95% means cutting at the 95% quantile.
    """
    if not 0.0 < target_tpr <= 1.0:
        raise ValueError(f"target_tpr must be in (0, 1], got {target_tpr}")
    # Rounded so that 1 - 0.95 lands exactly on the 0.05 grid level, not 0.05000000000000004.
    if DIRECTIONS[ScoreName(score)] is Direction.HIGHER_IS_IN:
        return round(1.0 - target_tpr, 12)
    return round(target_tpr, 12)


def score_quantiles(values: ArrayLike) -> list[float]:
    """Quantiles of in-distribution validation scores at :data:`QUANTILE_LEVELS` (manifest)."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0 or not np.all(np.isfinite(array)):
        raise ValueError("calibration scores must be a non-empty array of finite numbers")
    return [float(v) for v in np.quantile(array, QUANTILE_LEVELS)]


def threshold_from_quantiles(
    quantile_values: ArrayLike, target_tpr: float, score: ScoreName
) -> float:
    """Threshold that accepts ``target_tpr`` of in-distribution inputs, read off stored quantiles.

    Linear interpolation between grid levels matches ``np.quantile(..., method="linear")`` exactly
    at grid levels, so training (which calibrates through this function) and the service (which
    derives thresholds for other TPRs through it) agree to the last bit for the stored TPR.
    """
    values = np.asarray(quantile_values, dtype=np.float64)
    if values.shape != QUANTILE_LEVELS.shape:
        raise ValueError(f"expected {QUANTILE_LEVELS.size} quantile values, got {values.shape}")
    level = tpr_quantile_level(target_tpr, score)
    return float(np.interp(level, QUANTILE_LEVELS, values))


def calibrate_threshold(values: ArrayLike, target_tpr: float, score: ScoreName) -> float:
    """Threshold at ``target_tpr`` on in-distribution validation scores, via quantiles."""
    return threshold_from_quantiles(score_quantiles(values), target_tpr, score)

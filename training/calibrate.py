"""Rejection thresholds calibrated on held-out in-distribution data.

For every score the threshold is the one that accepts ``target_tpr`` (default 95%) of the
validation split, computed by :func:`service.scores.calibrate_threshold` — the same code the
service uses to derive thresholds for other TPRs from the stored quantiles. The test split is
never used here.
"""

from __future__ import annotations

import numpy as np

from service.manifest import Calibration, ScoreCalibration
from service.scores import (
    DIRECTIONS,
    ScoreName,
    compute_scores,
    score_quantiles,
    threshold_from_quantiles,
)

DEFAULT_TARGET_TPR = 0.95


def calibrate(
    validation_logits: np.ndarray,
    target_tpr: float = DEFAULT_TARGET_TPR,
    energy_temperature: float = 1.0,
    default_score: ScoreName = ScoreName.MSP,
) -> Calibration:
    """Thresholds and quantiles of every score on in-distribution validation logits."""
    scores = compute_scores(validation_logits, energy_temperature)
    calibrated: dict[ScoreName, ScoreCalibration] = {}
    for name, values in scores.items():
        quantiles = score_quantiles(values)
        calibrated[name] = ScoreCalibration(
            direction=DIRECTIONS[name],
            target_tpr=target_tpr,
            threshold=threshold_from_quantiles(quantiles, target_tpr, name),
            quantiles=quantiles,
        )
    return Calibration(
        num_samples=len(validation_logits),
        energy_temperature=energy_temperature,
        default_score=default_score,
        scores=calibrated,
    )

"""Which score and which threshold decide accept/reject, for a model and for one request.

Defaults come from the manifest (its calibrated threshold per score and its default score). The
settings may replace them: a global or per-model ``target_tpr`` derives every score's threshold
from the manifest's calibration quantiles with :func:`service.scores.threshold_from_quantiles`
(the same code training calibrated with), and a per-model ``threshold`` sets one score's cut-off.
A request may pick the score and override the threshold or target TPR, unless the settings
forbid it.

Directions (see :mod:`service.scores`): ``msp`` and ``max_logit`` accept when the score is
``>= threshold``; ``energy`` accepts when it is ``<= threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from service import errors
from service.manifest import Manifest
from service.scores import ScoreName, threshold_from_quantiles
from service.settings import ModelThresholds, Settings

ThresholdSource = Literal["manifest", "settings", "request"]


@dataclass(frozen=True)
class Threshold:
    """A threshold in force for one score, where it came from, and its TPR when known."""

    score: ScoreName
    value: float
    source: ThresholdSource
    target_tpr: float | None


@dataclass(frozen=True)
class ThresholdPolicy:
    """A model version's thresholds in force and whether requests may change them."""

    manifest: Manifest
    default_score: ScoreName
    thresholds: dict[ScoreName, Threshold]
    allow_score_override: bool
    allow_threshold_override: bool

    @classmethod
    def from_settings(cls, manifest: Manifest, settings: Settings) -> ThresholdPolicy:
        """Manifest values, replaced by global then per-model settings."""
        own = settings.model_thresholds.get(manifest.name, ModelThresholds())
        default_score = own.score or settings.default_score or manifest.calibration.default_score
        target_tpr = own.target_tpr or settings.target_tpr
        thresholds = {score: _configured(manifest, score, target_tpr) for score in ScoreName}
        if own.threshold is not None:
            thresholds[default_score] = Threshold(default_score, own.threshold, "settings", None)
        return cls(
            manifest,
            default_score,
            thresholds,
            settings.allow_score_override,
            settings.allow_threshold_override,
        )

    def resolve(
        self,
        score: ScoreName | None = None,
        threshold: float | None = None,
        target_tpr: float | None = None,
    ) -> Threshold:
        """The threshold for one request; raises a 403 service error for forbidden overrides."""
        if score is not None and score != self.default_score and not self.allow_score_override:
            raise errors.override_not_allowed("score")
        chosen = score or self.default_score
        if threshold is None and target_tpr is None:
            return self.thresholds[chosen]
        if not self.allow_threshold_override:
            raise errors.override_not_allowed(
                "threshold" if threshold is not None else "target_tpr"
            )
        if threshold is not None:
            _check_in_range(chosen, threshold)
            return Threshold(chosen, threshold, "request", None)
        assert target_tpr is not None
        return Threshold(chosen, self._from_tpr(chosen, target_tpr), "request", target_tpr)

    def _from_tpr(self, score: ScoreName, target_tpr: float) -> float:
        quantiles = self.manifest.calibration.scores[score].quantiles
        return threshold_from_quantiles(quantiles, target_tpr, score)


def _check_in_range(score: ScoreName, threshold: float) -> None:
    """MSP is a probability: a cut-off outside [0, 1] accepts or rejects everything, a mistake.

    Energy and MaxLogit are unbounded reals, so any finite threshold is meaningful for them.
    """
    if score is ScoreName.MSP and not 0.0 <= threshold <= 1.0:
        raise errors.invalid_input(
            f"threshold {threshold:g} is out of range for msp, a probability in [0, 1]",
            code="threshold_out_of_range",
        )


def _configured(manifest: Manifest, score: ScoreName, target_tpr: float | None) -> Threshold:
    calibration = manifest.calibration.scores[score]
    if target_tpr is None:
        return Threshold(score, calibration.threshold, "manifest", calibration.target_tpr)
    value = threshold_from_quantiles(calibration.quantiles, target_tpr, score)
    return Threshold(score, value, "settings", target_tpr)

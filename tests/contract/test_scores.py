"""The shared score and threshold definitions (service/scores.py), used by training and serving."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from service.scores import (
    QUANTILE_LEVELS,
    ScoreName,
    accepts,
    calibrate_threshold,
    compute_scores,
    energy,
    in_distribution_score,
    max_logit,
    msp,
    score_quantiles,
    threshold_from_quantiles,
)

rng = np.random.default_rng(0)
LOGITS = rng.normal(size=(200, 10)) * 4


def test_scores_match_torch_reference():
    t = torch.from_numpy(LOGITS)
    np.testing.assert_allclose(msp(LOGITS), torch.softmax(t, 1).max(1).values.numpy(), rtol=1e-12)
    np.testing.assert_allclose(energy(LOGITS), -torch.logsumexp(t, 1).numpy(), rtol=1e-12)
    np.testing.assert_allclose(energy(LOGITS, 2.0), -2 * torch.logsumexp(t / 2, 1).numpy())
    np.testing.assert_allclose(max_logit(LOGITS), t.max(1).values.numpy())


def test_scores_are_stable_for_huge_logits():
    huge = np.array([[1e4, 0.0, -1e4], [800.0, 799.0, 0.0]])
    assert np.all(np.isfinite(msp(huge))) and np.all(np.isfinite(energy(huge)))
    assert msp(huge)[0] == pytest.approx(1.0)
    assert energy(huge)[1] == pytest.approx(-(800 + np.log1p(np.exp(-1.0))))


def test_directions_make_confident_inputs_in_distribution():
    confident = np.array([[10.0, 0, 0, 0]])
    flat = np.array([[0.1, 0, 0, 0]])
    for name in ScoreName:
        c = in_distribution_score(compute_scores(confident)[name], name)
        f = in_distribution_score(compute_scores(flat)[name], name)
        assert c[0] > f[0], name


@pytest.mark.parametrize("tpr", [0.5, 0.9, 0.95, 0.99])
@pytest.mark.parametrize("name", list(ScoreName))
def test_calibrated_threshold_accepts_target_share(name, tpr):
    values = compute_scores(rng.normal(size=(5000, 10)) * 3)[name]
    threshold = calibrate_threshold(values, tpr, name)
    assert accepts(values, threshold, name).mean() == pytest.approx(tpr, abs=1e-3)


def test_threshold_from_quantiles_equals_numpy_quantile_at_grid_levels():
    values = rng.normal(size=3000)
    quantiles = score_quantiles(values)
    assert len(quantiles) == QUANTILE_LEVELS.size
    assert threshold_from_quantiles(quantiles, 0.95, ScoreName.MSP) == np.quantile(values, 0.05)
    assert threshold_from_quantiles(quantiles, 0.95, ScoreName.ENERGY) == np.quantile(values, 0.95)


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        msp(np.zeros(10))
    with pytest.raises(ValueError):
        score_quantiles([1.0, float("nan")])
    with pytest.raises(ValueError):
        threshold_from_quantiles(score_quantiles([1.0, 2.0]), 0.0, ScoreName.MSP)
    with pytest.raises(ValueError):
        threshold_from_quantiles([1.0, 2.0], 0.95, ScoreName.MSP)

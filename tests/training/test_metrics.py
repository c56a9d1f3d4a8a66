"""Tests for training.metrics: against scikit-learn, hand-worked cases and edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from service.scores import ScoreName, compute_scores, in_distribution_score
from training.metrics import (
    OodMetrics,
    accuracy,
    aupr_in,
    aupr_out,
    auroc,
    expected_calibration_error,
    fpr_at_threshold,
    fpr_at_tpr,
    ood_metrics,
    reliability_bins,
    roc_points,
    tpr_threshold,
)

SEEDS = range(40)


def _random_case(seed: int, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_id, n_ood = rng.integers(1, 300, size=2)
    ids = rng.normal(1.0, 1.0, n_id)
    ood = rng.normal(0.0, 1.5, n_ood)
    if ties:  # few distinct values: many ties within and across the two sets
        ids, ood = np.round(ids * 2) / 2, np.round(ood * 2) / 2
    return ids, ood


def _sklearn_inputs(ids: np.ndarray, ood: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ID labelled 1 (positive), as in the LogitNorm paper."""
    return np.r_[np.ones(ids.size), np.zeros(ood.size)], np.r_[ids, ood]


def _sklearn_fpr_at_tpr(ids: np.ndarray, ood: np.ndarray, tpr: float) -> float:
    labels, scores = _sklearn_inputs(ids, ood)
    fprs, tprs, _ = roc_curve(labels, scores, drop_intermediate=False)
    return float(fprs[np.argmax(tprs >= tpr)])  # first operating point reaching the target TPR


# ---------------------------------------------------------------------------- against sklearn


@pytest.mark.parametrize("ties", [False, True])
def test_auroc_and_average_precision_match_sklearn(ties: bool) -> None:
    for seed in SEEDS:
        ids, ood = _random_case(seed, ties)
        labels, scores = _sklearn_inputs(ids, ood)
        assert auroc(ids, ood) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
        assert aupr_in(ids, ood) == pytest.approx(
            average_precision_score(labels, scores), abs=1e-12
        )
        assert aupr_out(ids, ood) == pytest.approx(
            average_precision_score(1 - labels, -scores), abs=1e-12
        )


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("tpr", [0.95, 0.9, 0.5, 1.0])
def test_fpr_at_tpr_matches_sklearn_roc_curve(ties: bool, tpr: float) -> None:
    for seed in SEEDS:
        ids, ood = _random_case(seed, ties)
        assert fpr_at_tpr(ids, ood, tpr) == pytest.approx(_sklearn_fpr_at_tpr(ids, ood, tpr))


@pytest.mark.parametrize("n", [1, 7, 20, 100, 101, 1000])
def test_tpr_threshold_is_largest_threshold_reaching_target(n: int) -> None:
    rng = np.random.default_rng(n)
    for ids in (rng.normal(size=n), np.round(rng.normal(size=n))):
        threshold = tpr_threshold(ids, 0.95)
        assert np.mean(ids >= threshold) >= 0.95
        higher = ids[ids > threshold]
        if higher.size:  # the next distinct score up would accept too few
            assert np.mean(ids >= higher.min()) < 0.95


# ---------------------------------------------------------------------------- worked by hand


def test_fpr95_hand_worked() -> None:
    # 20 ID scores 0.05, 0.10, ..., 1.00. 95% TPR needs ceil(0.95 * 20) = 19 of them accepted,
    # so the threshold is the 19th largest ID score, 0.10 (accepts 1.00 .. 0.10; drops 0.05).
    ids = np.arange(1, 21) / 20
    # OOD 0.97, 0.50 and 0.10 (a tie with the threshold, accepted) are >= 0.10; 0.09 and 0 are not.
    ood = np.array([19.4, 10.0, 2.0, 1.8, 0.0]) / 20
    assert tpr_threshold(ids) == pytest.approx(0.10)
    assert fpr_at_tpr(ids, ood) == pytest.approx(3 / 5)
    # At 90% TPR: ceil(18) = 18th largest = 0.15, so only 0.97 and 0.50 are accepted.
    assert fpr_at_tpr(ids, ood, tpr=0.90) == pytest.approx(2 / 5)
    assert fpr_at_threshold(ood, 0.5) == pytest.approx(2 / 5)


def test_auroc_and_aupr_hand_worked() -> None:
    ids, ood = [3.0, 2.0, 1.0], [2.0, 0.0]
    # Pairs (id, ood): (3,2) 1, (3,0) 1, (2,2) 1/2, (2,0) 1, (1,2) 0, (1,0) 1 -> 4.5 / 6.
    assert auroc(ids, ood) == pytest.approx(0.75)
    # ID positive. Thresholds 3: P=1/1 R=1/3; 2 (ID and OOD tied): P=2/3 R=2/3; 1: P=3/4 R=1.
    # AP = 1/3 * 1 + 1/3 * 2/3 + 1/3 * 3/4 = 29/36.
    assert aupr_in(ids, ood) == pytest.approx(29 / 36)
    # OOD positive on negated scores 0, -1, -2 (tie), -3: 0: P=1 R=1/2; -1: R unchanged;
    # -2: P=2/4 R=1. AP = 1/2 * 1 + 1/2 * 1/2 = 3/4.
    assert aupr_out(ids, ood) == pytest.approx(0.75)


def test_perfect_separation() -> None:
    ids, ood = np.linspace(2, 3, 50), np.linspace(0, 1, 70)
    metrics = ood_metrics(ids, ood)
    assert metrics == OodMetrics(fpr95=0.0, auroc=1.0, aupr_in=1.0, aupr_out=1.0)
    assert metrics.as_dict() == {"fpr95": 0.0, "auroc": 1.0, "aupr_in": 1.0, "aupr_out": 1.0}


def test_identical_distributions_are_at_chance() -> None:
    rng = np.random.default_rng(0)
    ids, ood = rng.normal(size=4000), rng.normal(size=4000)
    assert auroc(ids, ood) == pytest.approx(0.5, abs=0.02)
    assert fpr_at_tpr(ids, ood) == pytest.approx(0.95, abs=0.02)
    same = np.ones(10)
    assert auroc(same, same) == 0.5  # all ties
    assert fpr_at_tpr(same, same) == 1.0


def test_fpr95_depends_on_direction() -> None:
    rng = np.random.default_rng(1)
    ids, ood = rng.normal(2.0, 1.0, 500), rng.normal(0.0, 1.0, 500)
    right = fpr_at_tpr(ids, ood)
    wrong = fpr_at_tpr(-ids, -ood)  # the score used the wrong way round
    assert right < 0.5 < wrong
    # AUROC just mirrors, so a direction bug shows up there as a value below 0.5.
    assert auroc(-ids, -ood) == pytest.approx(1.0 - auroc(ids, ood))


def test_energy_is_flipped_by_in_distribution_score() -> None:
    rng = np.random.default_rng(2)
    id_logits = rng.normal(size=(300, 10))
    id_logits[np.arange(300), rng.integers(0, 10, 300)] += 6.0  # confident in-distribution
    ood_logits = rng.normal(size=(300, 10))
    id_energy = compute_scores(id_logits)[ScoreName.ENERGY]
    ood_energy = compute_scores(ood_logits)[ScoreName.ENERGY]
    flipped = ood_metrics(
        in_distribution_score(id_energy, ScoreName.ENERGY),
        in_distribution_score(ood_energy, ScoreName.ENERGY),
    )
    assert flipped.auroc > 0.9
    assert flipped.fpr95 < 0.5


# ---------------------------------------------------------------------------- calibration


def test_ece_hand_worked() -> None:
    # Two bins (0, 0.5] and (0.5, 1]. Bin 1: conf 0.2, 0.3, 0.5 (edge -> lower bin), acc 2/3,
    # mean conf 1/3 -> |2/3 - 1/3| = 1/3, weight 3/5. Bin 2: conf 0.9, 0.95, acc 1/2, mean conf
    # 0.925 -> 0.425, weight 2/5. ECE = 0.2 + 0.17 = 0.37.
    conf = [0.2, 0.3, 0.5, 0.9, 0.95]
    pred = [1, 2, 3, 4, 5]
    labels = [1, 0, 3, 4, 0]
    assert expected_calibration_error(conf, pred, labels, n_bins=2) == pytest.approx(0.37)
    bins = reliability_bins(conf, pred, labels, n_bins=2)
    np.testing.assert_array_equal(bins.counts, [3, 2])
    np.testing.assert_allclose(bins.accuracy, [2 / 3, 1 / 2])
    np.testing.assert_allclose(bins.confidence, [1 / 3, 0.925])
    np.testing.assert_allclose(bins.edges, [0.0, 0.5, 1.0])
    assert bins.as_dict()["counts"] == [3, 2]


def test_ece_perfectly_calibrated() -> None:
    # Exactly calibrated: in each bin the accuracy equals the confidence.
    conf = [0.75] * 4 + [0.5] * 2 + [1.0] * 3
    correct = [1, 1, 1, 0, 1, 0, 1, 1, 1]  # 3/4 at 0.75, 1/2 at 0.5, 3/3 at 1.0
    labels = np.zeros(len(conf), dtype=int)
    assert expected_calibration_error(conf, 1 - np.array(correct), labels) == pytest.approx(0.0)
    # Statistically calibrated: correct with probability equal to the confidence.
    rng = np.random.default_rng(3)
    conf = rng.uniform(0.1, 1.0, 100_000)
    hits = rng.uniform(size=conf.size) < conf
    assert expected_calibration_error(conf, (~hits).astype(int), np.zeros(conf.size, int)) < 0.01


def test_ece_overconfident() -> None:
    conf = np.full(100, 0.99)
    pred = np.zeros(100, int)
    labels = np.r_[np.zeros(50, int), np.ones(50, int)]
    assert expected_calibration_error(conf, pred, labels) == pytest.approx(0.49)
    bins = reliability_bins(conf, pred, labels)
    assert bins.counts.sum() == 100 and bins.counts[-1] == 100
    assert np.all(bins.accuracy[:-1] == 0.0)  # empty bins report 0, counts tell them apart


def test_accuracy() -> None:
    assert accuracy([0, 1, 2, 3], [0, 1, 0, 0]) == 0.5
    assert accuracy(np.array([1.0, 2.0]), np.array([1, 2])) == 1.0


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("ids", "ood", "message"),
    [
        ([], [1.0], "empty"),
        ([1.0], [], "empty"),
        ([1.0, np.nan], [1.0], "finite"),
        ([1.0], [np.inf], "finite"),
        ([[1.0, 2.0]], [1.0], "1-D"),
    ],
)
def test_ood_metrics_reject_bad_input(ids: list, ood: list, message: str) -> None:
    for metric in (fpr_at_tpr, auroc, aupr_in, aupr_out, ood_metrics):
        with pytest.raises(ValueError, match=message):
            metric(ids, ood)


def test_bad_tpr_and_calibration_input() -> None:
    with pytest.raises(ValueError, match="tpr"):
        fpr_at_tpr([1.0], [1.0], tpr=0.0)
    with pytest.raises(ValueError, match="lengths differ"):
        expected_calibration_error([0.5, 0.6], [0, 1], [0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expected_calibration_error([1.5], [0], [0])
    with pytest.raises(ValueError, match="n_bins"):
        reliability_bins([0.5], [0], [0], n_bins=0)
    with pytest.raises(ValueError, match="integer"):
        accuracy([0.5], [0])


@pytest.mark.parametrize("ties", [False, True])
def test_roc_points_match_sklearn(ties: bool) -> None:
    for seed in range(10):
        ids, ood = _random_case(seed, ties)
        labels, scores = _sklearn_inputs(ids, ood)
        fprs, tprs, _ = roc_curve(labels, scores, drop_intermediate=False)
        fpr, tpr = roc_points(ids, ood)
        np.testing.assert_allclose(fpr, fprs, atol=1e-12)
        np.testing.assert_allclose(tpr, tprs, atol=1e-12)

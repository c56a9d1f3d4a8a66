"""Which plots an experiment produces, and from which arrays (the drawing is in ``plots.py``).

Per model (``models/<name>/<version>/plots/``): score histograms of ID test vs each OOD set with
the calibrated threshold (the paper's Figure 1), ROC curves, the reliability diagram and the
training curves. For the benchmark (``docs/img/``): the logit-norm-per-epoch curve of every loss,
average-FPR95 bars, and side-by-side MSP histograms.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from service.scores import ScoreName, compute_scores, softmax
from training import plots
from training.calibrate import calibrate
from training.metrics import expected_calibration_error, reliability_bins
from training.pipeline import DATASET, ExperimentData, ExperimentRun


def _dataset_title(dataset: str) -> str:
    """How plots name the in-distribution data (``train --export`` may use CIFAR or a folder)."""
    return "Fashion-MNIST" if dataset == DATASET else dataset


def model_plots(run: ExperimentRun, data: ExperimentData, out_dir: Path) -> dict[str, Path]:
    """Write one model's plots; returns ``{caption: path}``."""
    written: dict[str, Path] = {}
    id_name = _dataset_title(data.dataset)
    calibration = calibrate(run.val_logits)
    id_scores = compute_scores(run.test_logits)
    ood_scores = {name: compute_scores(z) for name, z in run.ood_logits.items()}
    loss = run.config.loss
    for score in ScoreName:
        written[f"{score} histogram"] = plots.score_histograms(
            id_scores[score],
            {name: s[score] for name, s in ood_scores.items()},
            score.value,
            out_dir / f"hist-{score.value}.png",
            title=f"{loss}: {score.value}, {id_name} test vs OOD sets",
            threshold=calibration.scores[score].threshold,
            id_name=id_name,
        )
    written["ROC (MSP)"] = plots.roc_curves(
        id_scores[ScoreName.MSP],
        {name: s[ScoreName.MSP] for name, s in ood_scores.items()},
        out_dir / "roc-msp.png",
        title=f"{loss}: ROC with MSP (ID positive)",
    )
    probabilities = softmax(run.test_logits)
    confidences, predictions = probabilities.max(1), probabilities.argmax(1)
    labels = data.test_labels
    written["reliability"] = plots.reliability_diagram(
        reliability_bins(confidences, predictions, labels),
        expected_calibration_error(confidences, predictions, labels),
        out_dir / "reliability.png",
        title=f"{loss}: reliability on {id_name} test",
    )
    written["training"] = plots.training_curves(
        {loss: _history_series(run)}, out_dir / "training.png", title=f"{loss}: training"
    )
    return written


def _history_series(run: ExperimentRun) -> dict[str, list[float]]:
    return {
        "train_loss": [row.loss for row in run.history],
        "train_accuracy": [row.accuracy for row in run.history],
        "mean_logit_norm": [row.mean_logit_norm for row in run.history],
    }


def benchmark_plots(
    results: dict[str, Any],
    runs: dict[str, ExperimentRun],
    data: ExperimentData,
    img_dir: Path,
) -> dict[str, Path]:
    """Write the benchmark's comparison plots; returns ``{caption: path}``."""
    del data  # the runs carry every logit array needed
    written: dict[str, Path] = {}
    written["Mean logit norm per epoch"] = plots.logit_norm_curve(
        {loss: [row.mean_logit_norm for row in run.history] for loss, run in runs.items()},
        img_dir / "logit-norm-per-epoch.png",
        title="Mean ||f|| of training logits per epoch",
    )
    written["Average FPR95 by loss and score"] = plots.comparison_bars(
        results["models"],
        img_dir / "avg-fpr95.png",
        metric="fpr95",
        title="Average FPR95 over OOD sets (lower is better)",
    )
    for loss, run in runs.items():
        id_msp = compute_scores(run.test_logits)[ScoreName.MSP]
        written[f"MSP histogram, {loss}"] = plots.score_histograms(
            id_msp,
            {name: compute_scores(z)[ScoreName.MSP] for name, z in run.ood_logits.items()},
            "msp",
            img_dir / f"hist-msp-{loss}.png",
            title=f"{loss}: MSP, Fashion-MNIST test vs OOD sets",
            id_name="Fashion-MNIST",
        )
    return written

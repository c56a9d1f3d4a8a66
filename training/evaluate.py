"""Evaluation: classification accuracy, calibration (ECE) and OOD detection per score and set.

OOD metrics treat **in-distribution as the positive class**, as in the LogitNorm paper: FPR95 is
the fraction of OOD inputs accepted at the threshold that accepts 95% of in-distribution test
inputs. (pytorch-ood and OpenOOD take OOD as positive and report different numbers for the same
scores.) Scores come from :mod:`service.scores`, flipped by ``in_distribution_score`` so that
higher always means in-distribution.

The result is a plain dict, ``{"accuracy", "ece", "ood": {score: {ood_set: metrics}}}``, which
``training.report`` renders and ``docs/ood-benchmark.md`` is made from.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from service.scores import ScoreName, compute_scores, in_distribution_score, softmax
from training.metrics import accuracy, expected_calibration_error, ood_metrics

ODIN = "odin"


def evaluate_logits(
    test_logits: np.ndarray,
    test_labels: np.ndarray,
    ood_logits: dict[str, np.ndarray],
    energy_temperature: float = 1.0,
) -> dict[str, Any]:
    """Accuracy and ECE on the ID test set, and OOD metrics for every score and OOD set."""
    probabilities = softmax(test_logits)
    predictions = probabilities.argmax(axis=1)
    result: dict[str, Any] = {
        "accuracy": accuracy(predictions, test_labels),
        "ece": expected_calibration_error(probabilities.max(axis=1), predictions, test_labels),
        "ood": {},
    }
    id_scores = compute_scores(test_logits, energy_temperature)
    ood_scores = {name: compute_scores(z, energy_temperature) for name, z in ood_logits.items()}
    for score in ScoreName:
        id_values = in_distribution_score(id_scores[score], score)
        result["ood"][score.value] = {
            name: asdict(ood_metrics(id_values, in_distribution_score(values[score], score)))
            for name, values in ood_scores.items()
        }
    return result


def odin_scores(
    model: nn.Module,
    images: torch.Tensor,
    device: torch.device,
    temperature: float = 1000.0,
    epsilon: float = 0.0014,
    batch_size: int = 512,
) -> np.ndarray:
    """ODIN (Liang et al., ICLR 2018): MSP at temperature T after a small input perturbation.

    Higher = in-distribution. Needs input gradients, so it is an offline evaluation option only;
    the service does not serve it. ``epsilon`` is in the normalized input space.
    """
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].to(device).requires_grad_(True)
        logits = model(x) / temperature
        loss = F.cross_entropy(logits, logits.argmax(1))
        (grad,) = torch.autograd.grad(loss, x)
        with torch.no_grad():
            perturbed = x - epsilon * grad.sign()
            out.append(F.softmax(model(perturbed) / temperature, dim=1).max(1).values.cpu())
    return torch.cat(out).numpy().astype(np.float64)


def evaluate_odin(
    model: nn.Module,
    test_images: torch.Tensor,
    ood_images: dict[str, torch.Tensor],
    device: torch.device,
) -> dict[str, dict[str, float]]:
    """ODIN metrics per OOD set, in the same shape as one score of :func:`evaluate_logits`."""
    id_values = odin_scores(model, test_images, device)
    return {
        name: asdict(ood_metrics(id_values, odin_scores(model, images, device)))
        for name, images in ood_images.items()
    }

"""Choosing LogitNorm's temperature tau without looking at the test OOD sets.

tau is not a universal constant: the paper's CIFAR-10 value (0.04) made OOD detection *worse*
than cross-entropy on Fashion-MNIST in a quick measurement here, while 0.1 made it better. So
tau is chosen per dataset, by this rule, on data available at training time only:

1. Train one model per candidate tau (same seed, epochs and settings as the final model).
2. On the held-out **in-distribution validation split**, measure accuracy.
3. On **synthetic validation outliers** built from training data and noise only
   (``training.data.outliers.make_validation_outliers``: pixel-permuted ID images, noise, ...;
   never the MNIST / letters / photos test sets), measure FPR95 of the MSP score with the
   validation split as the in-distribution side.
4. Keep the candidates whose validation accuracy is within ``accuracy_tolerance`` (1 point) of
   the best candidate's; among them pick the lowest validation-outlier FPR95, ties broken by
   higher accuracy.

This follows the validation protocols of the LogitNorm paper and Outlier Exposure (Hendrycks et
al., ICLR 2019), which tune on held-out data and synthetic outliers rather than the test OOD sets.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_TAUS: tuple[float, ...] = (0.04, 0.1, 0.2)
ACCURACY_TOLERANCE = 0.01


@dataclass(frozen=True)
class TauCandidate:
    """Validation figures of one trained candidate (fractions in [0, 1])."""

    tau: float
    val_accuracy: float
    val_outlier_fpr95: float


def select_tau(
    candidates: list[TauCandidate], accuracy_tolerance: float = ACCURACY_TOLERANCE
) -> TauCandidate:
    """Apply the rule above; raises on an empty list."""
    if not candidates:
        raise ValueError("no tau candidates to choose from")
    best_accuracy = max(c.val_accuracy for c in candidates)
    eligible = [c for c in candidates if c.val_accuracy >= best_accuracy - accuracy_tolerance]
    return min(eligible, key=lambda c: (c.val_outlier_fpr95, -c.val_accuracy))

"""IsoMax+ (Enhanced Isotropy Maximization).

Macêdo & Ludermir, "Enhanced Isotropy Maximization Loss: Seamless and High-Performance
Out-of-Distribution Detection Simply Replacing the SoftMax Loss", arXiv:2105.14399 (2021);
reference code: github.com/dlmacedo/entropic-out-of-distribution-detection.

IsoMax+ replaces the linear head by learnable class prototypes ``p_j`` and scores each class by the
negative, scaled distance between the L2-normalized features and normalized prototypes:

    logit_j(x) = -|s| * || normalize(h(x)) - normalize(p_j) ||_2

where ``s`` is a learnable distance scale. Training uses cross-entropy on the logits multiplied by
a fixed *entropic scale* ``E = 10``:

    L(x, y) = -log softmax(E * logit(x))_y

The head (prototypes and scale) is part of the model and is exported with it; the entropic scale
is used only in training, so the served logits are the plain ``-|s| * distance``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ENTROPIC_SCALE = 10.0


class IsoMaxPlusHead(nn.Module):
    """Prototype head producing IsoMax+ logits (negative scaled distances)."""

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.prototypes = nn.Parameter(torch.randn(num_classes, num_features))
        self.distance_scale = nn.Parameter(torch.ones(1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        # ||a - b||^2 = 2 - 2 a.b for unit vectors; a matmul exports to ONNX and runs fast,
        # unlike torch.cdist. The clamp keeps sqrt's gradient finite when a feature sits on a
        # prototype.
        features = F.normalize(features, dim=1)
        prototypes = F.normalize(self.prototypes, dim=1)
        squared = (2.0 - 2.0 * features @ prototypes.t()).clamp_min(1e-12)
        return -self.distance_scale.abs() * squared.sqrt()


def isomax_plus_loss(
    logits: torch.Tensor, targets: torch.Tensor, entropic_scale: float = ENTROPIC_SCALE
) -> torch.Tensor:
    """Cross-entropy on ``entropic_scale * logits`` (logits from :class:`IsoMaxPlusHead`)."""
    return F.cross_entropy(entropic_scale * logits, targets)


class IsoMaxPlusLoss(nn.Module):
    """Module twin of :func:`isomax_plus_loss`."""

    def __init__(self, entropic_scale: float = ENTROPIC_SCALE) -> None:
        super().__init__()
        self.entropic_scale = entropic_scale

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return isomax_plus_loss(logits, targets, self.entropic_scale)

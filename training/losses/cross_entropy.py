"""Cross-entropy: the baseline every OOD paper compares against.

Plain softmax cross-entropy ``L = -log softmax(f)_y``. Its minimum is approached by scaling the
logits up without bound, which is exactly why softmax confidence ends up high on *every* input,
in- or out-of-distribution (Wei et al., ICML 2022, Section 3).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def cross_entropy_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean softmax cross-entropy over the batch."""
    return F.cross_entropy(logits, targets)


class CrossEntropyLoss(nn.Module):
    """Module twin of :func:`cross_entropy_loss`, so every loss plugs into the trainer alike."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return cross_entropy_loss(logits, targets)

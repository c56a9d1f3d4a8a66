"""Logit Normalization (LogitNorm).

Wei, Xie, Cheng, Feng, An, Li. "Mitigating Neural Network Overconfidence with Logit
Normalization", ICML 2022 (arXiv:2205.09310; reference code: github.com/hongxin001/logitnorm_ood).

The loss is cross-entropy on logits divided by their L2 norm and a temperature ``tau``:

    L(f, y) = CE( f / (tau * ||f||_2 + eps), y ),    eps = 1e-7

Because the normalized vector always has norm ``1/tau``, the network cannot lower the loss by
inflating ``||f||``; it can only improve the *direction* of the logits. The loss is bounded below
by ``log(1 + (k - 1) * exp(-2 / tau))`` (the paper's Proposition; see
:func:`logitnorm_lower_bound`).

Only training changes: at test time the **raw** logits ``f`` are used for prediction and for the
MSP / energy scores.

``tau`` must be chosen per dataset (the paper's CIFAR-10 value 0.04 is not a universal constant):
see ``training/tau_sweep.py`` for the rule this project uses.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-7


def normalize_logits(logits: torch.Tensor, tau: float, eps: float = EPS) -> torch.Tensor:
    """``f / (tau * ||f||_2 + eps)``, row-wise."""
    norms = torch.linalg.vector_norm(logits, ord=2, dim=-1, keepdim=True)
    return logits / (tau * norms + eps)


def logitnorm_loss(
    logits: torch.Tensor, targets: torch.Tensor, tau: float, eps: float = EPS
) -> torch.Tensor:
    """Mean LogitNorm loss over the batch (cross-entropy on normalized logits)."""
    return F.cross_entropy(normalize_logits(logits, tau, eps), targets)


def logitnorm_lower_bound(num_classes: int, tau: float) -> float:
    """The paper's lower bound ``log(1 + (k - 1) e^{-2/tau})`` on the LogitNorm loss.

    Any two coordinates of a vector of norm ``1/tau`` differ by at most ``2/tau``, so each
    non-target term of the softmax denominator is at least ``e^{-2/tau}`` times the target's.
    """
    return math.log1p((num_classes - 1) * math.exp(-2.0 / tau))


class LogitNormLoss(nn.Module):
    """Module twin of :func:`logitnorm_loss` with a fixed ``tau``."""

    def __init__(self, tau: float = 0.04, eps: float = EPS) -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f"tau must be positive, got {tau}")
        self.tau = tau
        self.eps = eps

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return logitnorm_loss(logits, targets, self.tau, self.eps)

    def extra_repr(self) -> str:
        return f"tau={self.tau}"

"""Training losses, built by name: ``build_loss("logitnorm", tau=0.1)``."""

from __future__ import annotations

from typing import Literal

from torch import nn

from training.losses.cross_entropy import CrossEntropyLoss
from training.losses.isomax_plus import IsoMaxPlusLoss
from training.losses.logitnorm import LogitNormLoss

LossName = Literal["cross_entropy", "logitnorm", "isomax_plus"]
LOSS_NAMES: tuple[LossName, ...] = ("cross_entropy", "logitnorm", "isomax_plus")


def build_loss(name: str, tau: float | None = None) -> nn.Module:
    """The loss module for ``name``; ``tau`` is required for LogitNorm and refused otherwise."""
    if name == "logitnorm":
        if tau is None:
            raise ValueError("logitnorm needs tau")
        return LogitNormLoss(tau)
    if tau is not None:
        raise ValueError(f"tau applies to logitnorm only, not {name}")
    if name == "cross_entropy":
        return CrossEntropyLoss()
    if name == "isomax_plus":
        return IsoMaxPlusLoss()
    raise ValueError(f"unknown loss {name!r}; choose from {', '.join(LOSS_NAMES)}")


def head_for_loss(name: str) -> Literal["linear", "isomax_plus"]:
    """IsoMax+ needs its prototype head in the model; the other losses use a linear head."""
    return "isomax_plus" if name == "isomax_plus" else "linear"

"""The losses' defining properties, each checked so that a wrong implementation fails."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from training.losses import build_loss
from training.losses.isomax_plus import IsoMaxPlusHead, IsoMaxPlusLoss, isomax_plus_loss
from training.losses.logitnorm import (
    LogitNormLoss,
    logitnorm_loss,
    logitnorm_lower_bound,
    normalize_logits,
)


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 10, generator=generator, dtype=torch.float64) * 5
    targets = torch.randint(0, 10, (64,), generator=generator)
    return logits, targets


def test_logitnorm_equals_cross_entropy_on_normalized_logits(batch):
    logits, targets = batch
    tau = 0.1
    by_hand = logits / (tau * logits.norm(dim=1, keepdim=True) + 1e-7)
    assert torch.allclose(logitnorm_loss(logits, targets, tau), F.cross_entropy(by_hand, targets))
    # ...and differs from plain cross-entropy on the raw logits.
    assert not torch.allclose(
        logitnorm_loss(logits, targets, tau), F.cross_entropy(logits, targets)
    )


def test_normalized_logits_have_norm_one_over_tau(batch):
    logits, _ = batch
    norms = normalize_logits(logits, 0.04).norm(dim=1)
    assert torch.allclose(norms, torch.full_like(norms, 1 / 0.04), rtol=1e-6)


@pytest.mark.parametrize("scale", [1e-2, 0.5, 3.0, 1e3])
def test_logitnorm_is_invariant_to_positive_scaling(batch, scale):
    logits, targets = batch
    base = logitnorm_loss(logits, targets, 0.1)
    scaled = logitnorm_loss(logits * scale, targets, 0.1)
    assert torch.allclose(base, scaled, rtol=1e-5)
    # Cross-entropy is not: this is what lets CE lower its loss by inflating the norm.
    assert not torch.allclose(
        F.cross_entropy(logits, targets), F.cross_entropy(logits * scale, targets)
    )


@pytest.mark.parametrize("tau", [0.04, 0.1, 0.5, 1.0])
def test_logitnorm_minimum_respects_lower_bound(tau):
    """Minimize the loss directly over free logits: it must stop at or above the bound."""
    k = 10
    logits = torch.randn(32, k, dtype=torch.float64, requires_grad=True)
    targets = torch.arange(32) % k
    optimizer = torch.optim.Adam([logits], lr=0.05)
    for _ in range(1500):
        optimizer.zero_grad()
        loss = logitnorm_loss(logits, targets, tau)
        loss.backward()
        optimizer.step()
    bound = logitnorm_lower_bound(k, tau)
    per_sample = F.cross_entropy(normalize_logits(logits.detach(), tau), targets, reduction="none")
    assert per_sample.min().item() >= bound - 1e-9
    # Cross-entropy on the same logits can go far lower by growing the norm.
    assert bound == pytest.approx(math.log1p((k - 1) * math.exp(-2 / tau)))


def test_logitnorm_two_class_optimum_by_hand():
    """k=2, logits (1, -1): normalized to norm 1/tau they are (±1/sqrt2)/tau, a margin of
    sqrt2/tau, so the loss is log(1 + e^{-sqrt2/tau}); the paper's bound assumes the larger
    margin 2/tau and so sits below it."""
    tau = 0.5
    logits = torch.tensor([[1.0, -1.0]], dtype=torch.float64)
    loss = logitnorm_loss(logits, torch.tensor([0]), tau).item()
    assert loss == pytest.approx(math.log1p(math.exp(-math.sqrt(2) / tau)), rel=1e-6)
    assert loss > logitnorm_lower_bound(2, tau)


def test_logitnorm_module_rejects_bad_tau():
    with pytest.raises(ValueError):
        LogitNormLoss(tau=0.0)


def test_isomax_plus_gradients_reach_prototypes_and_scale():
    head = IsoMaxPlusHead(num_features=8, num_classes=4)
    features = torch.randn(16, 8, requires_grad=True)
    targets = torch.randint(0, 4, (16,))
    loss = IsoMaxPlusLoss()(head(features), targets)
    loss.backward()
    assert head.prototypes.grad is not None and head.prototypes.grad.abs().sum() > 0
    assert head.distance_scale.grad is not None and head.distance_scale.grad.abs().item() > 0
    assert features.grad is not None and features.grad.abs().sum() > 0


def test_isomax_plus_logits_are_negative_scaled_distances():
    head = IsoMaxPlusHead(num_features=3, num_classes=2)
    with torch.no_grad():
        head.prototypes.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
        head.distance_scale.fill_(-2.0)  # the absolute value is used
    logits = head(torch.tensor([[5.0, 0.0, 0.0]]))
    # normalized feature equals prototype 0 (distance ~0) and is sqrt(2) from prototype 1
    assert logits[0, 0].item() == pytest.approx(0.0, abs=1e-5)
    assert logits[0, 1].item() == pytest.approx(-2.0 * math.sqrt(2.0), rel=1e-6)


def test_isomax_plus_loss_uses_entropic_scale():
    logits = -torch.rand(5, 3)
    targets = torch.tensor([0, 1, 2, 0, 1])
    assert torch.allclose(isomax_plus_loss(logits, targets), F.cross_entropy(10 * logits, targets))


def test_build_loss_checks_tau():
    assert isinstance(build_loss("logitnorm", tau=0.1), LogitNormLoss)
    with pytest.raises(ValueError):
        build_loss("logitnorm")
    with pytest.raises(ValueError):
        build_loss("cross_entropy", tau=0.1)
    with pytest.raises(ValueError):
        build_loss("focal")

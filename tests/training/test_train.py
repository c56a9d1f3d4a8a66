"""Trainer behaviour on tiny synthetic data: augmentation, schedule, checkpoint and resume."""

from __future__ import annotations

import contextlib
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from training.distributed import setup
from training.tau_sweep import TauCandidate, select_tau
from training.train import TrainConfig, Trainer, augment_batch, cosine_lr_lambda, predict_logits


def _tiny_data(n: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    labels = torch.arange(n) % 3
    images = torch.randn(n, 1, 28, 28, generator=generator) * 0.1
    images[:, :, 4:10, 4:10] += labels[:, None, None, None].float()  # learnable signal
    return images, labels


CONFIG = TrainConfig(epochs=2, batch_size=32, seed=3, device="cpu", lr=0.05)


def test_augment_keeps_shape_and_is_seeded():
    images = torch.randn(16, 1, 28, 28)
    a = augment_batch(images, torch.Generator().manual_seed(0))
    b = augment_batch(images, torch.Generator().manual_seed(0))
    c = augment_batch(images, torch.Generator().manual_seed(1))
    assert a.shape == images.shape
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_cosine_schedule_starts_at_one_and_ends_near_zero():
    factor = cosine_lr_lambda(100, 0.1)
    assert factor(0) == 1.0
    assert math.isclose(factor(50), 0.5, abs_tol=1e-4)
    assert factor(100) < 1e-4


def test_training_logs_history_and_learns():
    images, labels = _tiny_data()
    result = Trainer(replace(CONFIG, epochs=3), 3, setup("cpu")).fit(images, labels, resume=False)
    assert [row.epoch for row in result.history] == [1, 2, 3]
    assert all(row.samples == len(images) for row in result.history)
    assert all(row.mean_logit_norm > 0 for row in result.history)
    accuracy = predict_logits(result.model, images, torch.device("cpu")).argmax(1) == labels.numpy()
    assert accuracy.mean() > 0.6


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
    images, labels = _tiny_data()
    straight = Trainer(CONFIG, 3, setup("cpu"), tmp_path / "a").fit(images, labels)
    Trainer(replace(CONFIG, epochs=1), 3, setup("cpu"), tmp_path / "b").fit(images, labels)
    # The 1-epoch checkpoint has another config: a resume must refuse it rather than mix runs.
    with pytest.raises(ValueError, match="another config"):
        Trainer(CONFIG, 3, setup("cpu"), tmp_path / "b").fit(images, labels)
    part = Trainer(CONFIG, 3, setup("cpu"), tmp_path / "c")
    part_result = _fit_epochs(part, images, labels, stop_after=1)
    assert len(part_result) == 1
    resumed = Trainer(CONFIG, 3, setup("cpu"), tmp_path / "c").fit(images, labels)
    assert [row.epoch for row in resumed.history] == [1, 2]
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def _fit_epochs(trainer: Trainer, images, labels, stop_after: int):
    """Run ``fit`` but stop after ``stop_after`` epochs, as a crash would."""
    original = trainer._train_epoch
    calls = []

    def limited(*args, **kwargs):
        if len(calls) >= stop_after:
            raise KeyboardInterrupt
        calls.append(1)
        return original(*args, **kwargs)

    trainer._train_epoch = limited  # type: ignore[method-assign]
    with contextlib.suppress(KeyboardInterrupt):
        trainer.fit(images, labels)
    return trainer.history


def test_select_tau_prefers_low_outlier_fpr_among_accurate_candidates():
    candidates = [
        TauCandidate(0.04, val_accuracy=0.880, val_outlier_fpr95=0.10),  # best FPR, too inaccurate
        TauCandidate(0.1, val_accuracy=0.905, val_outlier_fpr95=0.30),
        TauCandidate(0.2, val_accuracy=0.910, val_outlier_fpr95=0.45),
    ]
    assert select_tau(candidates).tau == 0.1
    assert select_tau(candidates, accuracy_tolerance=0.05).tau == 0.04


def test_predict_logits_is_batched_consistently():
    model = Trainer(CONFIG, 3, setup("cpu")).model
    images, _ = _tiny_data(50)
    full = predict_logits(model, images, torch.device("cpu"), batch_size=1024)
    chunked = predict_logits(model, images, torch.device("cpu"), batch_size=7)
    np.testing.assert_allclose(full, chunked, atol=1e-5)

"""A checkpoint is reused only by the run that made it: same config *and* same training data.

Regression: the run folder and the resume check used to look at ``TrainConfig`` alone, so
``ood-train train --train-subset 2000`` followed by ``make model`` reused the 2,000-image weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.distributed import setup
from training.pipeline import ExperimentData, load_labelled_experiment, run_directory
from training.train import TrainConfig, Trainer

CONFIG = TrainConfig(epochs=1, batch_size=32, seed=3, device="cpu", lr=0.05)


def _data(val_size: int = 20, train_subset: int | None = None, shift: int = 0) -> ExperimentData:
    """Tiny synthetic 3-class data through the real loader (split, subset, normalization)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 200, (120, 28, 28), dtype=np.uint8) + np.uint8(shift)
    labels = np.arange(120, dtype=np.int64) % 3
    test = (images[:30], labels[:30])
    return load_labelled_experiment(
        (images, labels), test, ["a", "b", "c"], "synthetic", 0, val_size, train_subset
    )


def _fit(data: ExperimentData, run_dir: Path) -> Trainer:
    trainer = Trainer(CONFIG, len(data.classes), setup("cpu"), run_dir)
    trainer.fit(data.train_images, data.train_labels)
    return trainer


def test_other_subset_val_size_data_or_world_size_get_their_own_run_folder(tmp_path):
    base = _data()
    others = [_data(train_subset=60), _data(val_size=24), _data(shift=40)]
    folders = {run_directory(tmp_path, CONFIG, data) for data in [base, *others]}
    assert len(folders) == 4
    assert run_directory(tmp_path, CONFIG, base, world_size=2) != run_directory(
        tmp_path, CONFIG, base
    )
    assert run_directory(tmp_path, CONFIG, _data()) == run_directory(tmp_path, CONFIG, base)


def test_a_checkpoint_resumes_only_for_the_same_training_data(tmp_path, capsys):
    base, subset = _data(), _data(train_subset=60)
    _fit(base, run_directory(tmp_path, CONFIG, base))
    # The subset run lands in its own folder and trains from scratch instead of resuming.
    fresh = _fit(subset, run_directory(tmp_path, CONFIG, subset))
    assert fresh.history[0].samples == 60
    assert "resumed" not in capsys.readouterr().out
    # Forced into the other run's folder, it refuses the checkpoint rather than reuse it.
    with pytest.raises(ValueError, match="other training data"):
        _fit(subset, run_directory(tmp_path, CONFIG, base))
    # The same config and data still resume: nothing is retrained.
    again = _fit(_data(), run_directory(tmp_path, CONFIG, base))
    assert again.start_epoch == CONFIG.epochs
    assert "resumed from" in capsys.readouterr().out

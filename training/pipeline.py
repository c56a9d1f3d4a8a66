"""One experiment end to end: data -> train -> logits -> calibrate -> evaluate -> export.

The Fashion-MNIST benchmark (``training.benchmark``) and the ``train`` command both run through
here, so the shipped default model and the benchmark table come from the same code path.

Split discipline: the model trains on the training split minus a held-out validation split;
calibration and tau selection see only the validation split (and synthetic outliers built from
training data); the test split and the five OOD test sets are used for reporting only.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from service.manifest import Preprocessing, TrainingInfo
from service.scores import ScoreName, compute_scores, in_distribution_score
from training.calibrate import calibrate
from training.data.fashion_mnist import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    load_fashion_mnist,
)
from training.data.paths import DataPaths
from training.data.splits import train_val_split
from training.data.tensors import normalize
from training.distributed import DistributedContext
from training.evaluate import evaluate_logits
from training.export import ExportSpec, export_model_dir
from training.metrics import fpr_at_tpr
from training.train import EpochStats, TrainConfig, Trainer, predict_logits, run_identity

DATASET = "fashion-mnist"


@dataclass
class ExperimentData:
    """Normalized float32 NCHW tensors of every split plus the OOD sets, all in memory."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: np.ndarray
    test_images: torch.Tensor
    test_labels: np.ndarray
    ood: dict[str, torch.Tensor]
    val_outliers: torch.Tensor
    classes: list[str]
    preprocessing: Preprocessing
    dataset: str = DATASET


def _tensor(images: np.ndarray, preprocessing: Preprocessing) -> torch.Tensor:
    return torch.from_numpy(normalize(images, preprocessing.mean, preprocessing.std))


def load_fashion_mnist_experiment(
    paths: DataPaths | None = None,
    seed: int = 0,
    val_size: int = 5000,
    train_subset: int | None = None,
    test_subset: int | None = None,
    ood_subset: int | None = None,
) -> ExperimentData:
    """Fashion-MNIST with a stratified validation split, the five OOD sets and validation outliers.

    The ``*_subset`` arguments take the first N items, for smoke tests on real data.
    """
    from training.data.ood_sets import load_or_build_ood_sets
    from training.data.outliers import make_validation_outliers

    paths = paths or DataPaths.resolve()
    images, labels = load_fashion_mnist(paths.fashion_mnist_dir, "train")
    train_idx, val_idx = train_val_split(len(images), val_size, seed, labels)
    if train_subset is not None:
        train_idx = train_idx[:train_subset]
    test_images, test_labels = load_fashion_mnist(paths.fashion_mnist_dir, "test")
    test_images, test_labels = test_images[:test_subset], test_labels[:test_subset]
    ood_sets = {k: v[:ood_subset] for k, v in load_or_build_ood_sets(paths, seed=seed).items()}
    outliers = make_validation_outliers(images[train_idx], seed)[:ood_subset]
    preprocessing = Preprocessing(
        color_mode="grayscale",
        height=28,
        width=28,
        mean=(FASHION_MNIST_MEAN,),
        std=(FASHION_MNIST_STD,),
    )
    return ExperimentData(
        train_images=_tensor(images[train_idx], preprocessing),
        train_labels=torch.from_numpy(labels[train_idx]),
        val_images=_tensor(images[val_idx], preprocessing),
        val_labels=labels[val_idx],
        test_images=_tensor(test_images, preprocessing),
        test_labels=test_labels,
        ood={name: _tensor(x, preprocessing) for name, x in ood_sets.items()},
        val_outliers=_tensor(outliers, preprocessing),
        classes=list(FASHION_MNIST_CLASSES),
        preprocessing=preprocessing,
    )


NOISE_ITEMS = 2000


def _noise_sets(shape: tuple[int, ...], seed: int) -> dict[str, np.ndarray]:
    """Gaussian and uniform noise images of ``shape`` (per item), the OOD sets any dataset has."""
    rng = np.random.default_rng([seed, 1234])
    gaussian = np.clip(rng.normal(127.5, 64.0, (NOISE_ITEMS, *shape)), 0, 255)
    uniform = rng.integers(0, 256, (NOISE_ITEMS, *shape))
    return {"gaussian": gaussian.astype(np.uint8), "uniform": uniform.astype(np.uint8)}


def _channel_outliers(images: np.ndarray, seed: int) -> np.ndarray:
    """Validation outliers for grayscale [N,H,W] or RGB [N,H,W,3] images.

    RGB images get the same spatial transform on every channel: the generator is re-seeded
    identically per channel, so the draws (source image, permutation, ...) repeat.
    """
    from training.data.outliers import make_validation_outliers

    if images.ndim == 3:
        return make_validation_outliers(images, seed)
    channels = [
        make_validation_outliers(np.ascontiguousarray(images[..., c]), seed) for c in range(3)
    ]
    return np.stack(channels, axis=-1)


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images scaled to [0, 1] (the manifest's normalization)."""
    pixels = images.reshape(len(images), -1) if images.ndim == 3 else images.reshape(-1, 3)
    scaled = pixels.astype(np.float64) / 255.0
    if images.ndim == 3:
        return (float(scaled.mean()),), (float(scaled.std()),)
    return tuple(scaled.mean(0).tolist()), tuple(scaled.std(0).tolist())


def load_labelled_experiment(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    classes: list[str],
    dataset: str,
    seed: int = 0,
    val_size: int = 5000,
    train_subset: int | None = None,
    test_subset: int | None = None,
) -> ExperimentData:
    """Any uint8 image dataset (CIFAR, an image folder): noise OOD sets, stats from training data.

    Bring-your-own data has no curated OOD test sets; Gaussian and uniform noise are always
    available, and the validation outliers still drive threshold sanity checks and tau selection.
    """
    images, labels = train
    train_idx, val_idx = train_val_split(len(images), min(val_size, len(images) // 5), seed, labels)
    if train_subset is not None:
        train_idx = train_idx[:train_subset]
    mean, std = channel_stats(images[train_idx])
    height, width = images.shape[1:3]
    preprocessing = Preprocessing(
        color_mode="grayscale" if images.ndim == 3 else "rgb",
        height=height,
        width=width,
        mean=mean,
        std=std,
    )
    test_images, test_labels = test[0][:test_subset], test[1][:test_subset]
    return ExperimentData(
        train_images=_tensor(images[train_idx], preprocessing),
        train_labels=torch.from_numpy(labels[train_idx]),
        val_images=_tensor(images[val_idx], preprocessing),
        val_labels=labels[val_idx],
        test_images=_tensor(test_images, preprocessing),
        test_labels=test_labels,
        ood={k: _tensor(v, preprocessing) for k, v in _noise_sets(images.shape[1:], seed).items()},
        val_outliers=_tensor(_channel_outliers(images[train_idx], seed), preprocessing),
        classes=classes,
        preprocessing=preprocessing,
        dataset=dataset,
    )


@dataclass
class ExperimentRun:
    """A trained model and its raw logits on every split; metrics are computed from these."""

    config: TrainConfig
    model: torch.nn.Module
    history: list[EpochStats]
    val_logits: np.ndarray
    test_logits: np.ndarray
    ood_logits: dict[str, np.ndarray]
    val_outlier_logits: np.ndarray
    evaluation: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds_per_epoch(self) -> float:
        return float(np.mean([row.seconds for row in self.history])) if self.history else 0.0

    def val_accuracy(self, labels: np.ndarray) -> float:
        return float((self.val_logits.argmax(1) == labels).mean())

    def val_outlier_fpr95(self, score: ScoreName = ScoreName.MSP) -> float:
        """FPR95 of synthetic validation outliers vs the ID validation split (ID positive)."""
        id_values = compute_scores(self.val_logits)[score]
        out_values = compute_scores(self.val_outlier_logits)[score]
        return fpr_at_tpr(
            in_distribution_score(id_values, score), in_distribution_score(out_values, score)
        )


def run_directory(
    runs_root: Path, config: TrainConfig, data: ExperimentData, world_size: int = 1
) -> Path:
    """The checkpoint folder of one run identity, so re-runs resume or reuse it and nothing else.

    The readable prefix names dataset, model, loss, epochs and seed; the suffix hashes the whole
    :func:`training.train.run_identity` (every ``TrainConfig`` field, the exact training tensors,
    the DDP world size). A run with another training subset, validation size, data location or
    seed therefore gets its own folder instead of reusing another run's checkpoint.
    """
    identity = run_identity(config, data.train_images, data.train_labels, world_size)
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    tau = f"-tau{config.tau:g}" if config.loss == "logitnorm" else ""
    prefix = f"{data.dataset}-{config.model}-{config.loss}{tau}-e{config.epochs}-s{config.seed}"
    return runs_root / f"{prefix}-{key}"


def train_and_score(
    config: TrainConfig,
    data: ExperimentData,
    context: DistributedContext,
    run_dir: Path | None,
) -> ExperimentRun | None:
    """Train (or resume) and compute logits everywhere. Returns None on non-main DDP ranks."""
    prep = data.preprocessing
    channels = 1 if prep.color_mode == "grayscale" else 3
    trainer = Trainer(config, len(data.classes), context, run_dir, channels, prep.height)
    result = trainer.fit(data.train_images, data.train_labels)
    if not context.is_main:
        return None
    device = context.device
    started = time.monotonic()
    run = ExperimentRun(
        config=config,
        model=result.model,
        history=result.history,
        val_logits=predict_logits(result.model, data.val_images, device),
        test_logits=predict_logits(result.model, data.test_images, device),
        ood_logits={k: predict_logits(result.model, v, device) for k, v in data.ood.items()},
        val_outlier_logits=predict_logits(result.model, data.val_outliers, device),
    )
    run.evaluation = evaluate_logits(run.test_logits, data.test_labels, run.ood_logits)
    run.evaluation["val_accuracy"] = run.val_accuracy(data.val_labels)
    run.evaluation["val_outlier_fpr95_msp"] = run.val_outlier_fpr95()
    print(f"scored all splits in {time.monotonic() - started:.1f}s", flush=True)
    return run


def export_run(
    run: ExperimentRun,
    data: ExperimentData,
    name: str,
    models_root: Path,
    version: str = "1",
    description: str = "",
) -> tuple[Path, float]:
    """Calibrate on the validation split and write ``models_root/name/version``."""
    config = run.config
    spec = ExportSpec(
        name=name,
        version=version,
        classes=data.classes,
        preprocessing=data.preprocessing,
        training=TrainingInfo(
            loss=config.loss,  # type: ignore[arg-type]
            tau=config.tau if config.loss == "logitnorm" else None,
            architecture=config.model,
            dataset=data.dataset,
            seed=config.seed,
            epochs=config.epochs,
            extra={"config": asdict(config), "history": [asdict(row) for row in run.history]},
        ),
        description=description,
    )
    parity_inputs = data.test_images[:256].numpy()
    return export_model_dir(
        run.model,
        spec,
        calibrate(run.val_logits),
        parity_inputs,
        models_root,
        metrics=summarize(run.evaluation),
    )


def export_with_report(
    run: ExperimentRun,
    data: ExperimentData,
    name: str,
    models_root: Path,
    version: str = "1",
    description: str = "",
) -> tuple[Path, dict[str, Any]]:
    """:func:`export_run`, then ``report.json``, ``report.md`` and ``plots/`` beside the model.

    Both ``ood-train train --export`` and the benchmark export through here, so a model directory
    has the same files whichever command made it. Returns the directory and the report entry.
    """
    model_dir, parity = export_run(run, data, name, models_root, version, description)
    config = run.config
    entry = summarize(run.evaluation)
    entry.update(
        loss=config.loss,
        tau=config.tau if config.loss == "logitnorm" else None,
        epochs=config.epochs,
        seconds_per_epoch=run.seconds_per_epoch,
        onnx_parity_max_abs_diff=parity,
        history=[asdict(row) for row in run.history],
        model_dir=str(model_dir),
    )
    write_model_artifacts(run, data, entry, model_dir)
    return model_dir, entry


def write_model_artifacts(
    run: ExperimentRun, data: ExperimentData, entry: dict[str, Any], model_dir: Path
) -> None:
    """report.json, report.md and plots beside the model, for whoever inspects the repository."""
    from training.report import markdown_report, write_json_report, write_markdown
    from training.visualize import model_plots  # imports this module: only at call time

    write_json_report(
        {k: v for k, v in entry.items() if k != "model_dir"}, model_dir / "report.json"
    )
    write_markdown(markdown_report({model_dir.parent.name: entry}), model_dir / "report.md")
    model_plots(run, data, model_dir / "plots")


def summarize(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The evaluation with per-score averages over OOD sets, as stored in the manifest."""
    from training.report import average_over_sets

    summary = {k: v for k, v in evaluation.items() if k != "ood"}
    summary["fpr_tpr_convention"] = "in-distribution is the positive class (TPR 95% on ID test)"
    summary["ood"] = {
        score: {**per_set, "average": average_over_sets(per_set)}
        for score, per_set in evaluation["ood"].items()
    }
    return summary

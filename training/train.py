"""The training loop: one trainer for every loss and model.

Settings follow the LogitNorm paper: SGD with Nesterov momentum 0.9, learning rate 0.1 decayed by a
per-step cosine schedule, weight decay 5e-4, batch size 128. Each epoch logs the mean L2 norm of the
raw logits, the quantity the paper shows growing without bound under cross-entropy and held in
check by LogitNorm.

Data arrive as in-memory tensors (Fashion-MNIST fits in 200 MB); batches are drawn with a
``BatchSampler`` so indexing is one tensor gather per batch, not 128 Python calls.

Under ``torchrun`` every rank draws ``batch_size`` (128) items per step, so the global batch is
``batch_size * world_size`` while the learning rate stays the same: a 2-process run is not the
paper's setting, and its weights differ from a single-process run's (the world size is part of
the run identity for that reason).
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from training.distributed import DistributedContext, all_reduce_sum
from training.losses import build_loss, head_for_loss
from training.models import Classifier, create_model

CHECKPOINT_NAME = "last.pt"


@dataclass
class TrainConfig:
    """Everything that determines a training run; saved in checkpoints and manifests."""

    model: str = "small_cnn"
    loss: str = "logitnorm"
    tau: float | None = 0.1
    epochs: int = 8
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    seed: int = 0
    augment: bool = True
    device: str = "auto"


@dataclass
class EpochStats:
    """One row of the training history."""

    epoch: int
    loss: float
    accuracy: float
    mean_logit_norm: float
    lr: float
    seconds: float
    samples: int


@dataclass
class TrainResult:
    """The trained model (unwrapped from DDP) and its per-epoch history."""

    model: Classifier
    history: list[EpochStats] = field(default_factory=list)

    def history_dicts(self) -> list[dict[str, float]]:
        return [asdict(row) for row in self.history]


def seed_everything(seed: int) -> None:
    """Same seed, same initial weights and batch order (on the CPU, bit for bit)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def augment_batch(images: torch.Tensor, generator: torch.Generator, pad: int = 2) -> torch.Tensor:
    """Random horizontal flip and random translation by up to ``pad`` pixels (pad-and-crop).

    Padding uses each image's own corner value (the background), so shifted-in borders look like
    background rather than a black frame after normalization.
    """
    n, _, height, width = images.shape
    flip = torch.rand(n, generator=generator) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(3), images)
    background = images[:, :, :1, :1]
    padded = F.pad(images - background, (pad, pad, pad, pad)) + background
    shifts = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator)
    out = torch.empty_like(images)
    for dy, dx in {tuple(s) for s in shifts.tolist()}:
        rows = ((shifts[:, 0] == dy) & (shifts[:, 1] == dx)).nonzero().squeeze(1)
        out[rows] = padded[rows, :, dy : dy + height, dx : dx + width]
    return out


def cosine_lr_lambda(total_steps: int, lr: float, final_lr: float = 1e-6) -> Any:
    """Per-step cosine decay from ``lr`` to ``final_lr`` (the paper's ``cosine_annealing``)."""

    def factor(step: int) -> float:
        progress = min(step, total_steps) / max(total_steps, 1)
        return final_lr / lr + (1 - final_lr / lr) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def data_fingerprint(images: torch.Tensor, labels: torch.Tensor) -> str:
    """sha256 of the exact training tensors: shapes, dtypes and values.

    The training subset, the validation size, the split seed, the data location and the
    normalization all change these tensors, so they all change the fingerprint without each
    option having to be listed (and kept listed) by hand. Hashing 55,000 Fashion-MNIST images
    takes about 0.1 s.
    """
    digest = hashlib.sha256()
    for tensor in (images, labels):
        array = np.ascontiguousarray(tensor.detach().cpu().numpy())
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.data)  # C-contiguous, so hashed without a copy
    return digest.hexdigest()


def run_identity(
    config: TrainConfig, images: torch.Tensor, labels: torch.Tensor, world_size: int = 1
) -> dict[str, Any]:
    """Everything that changes the trained weights; a checkpoint is reused only for an equal one.

    ``TrainConfig`` alone is not enough: options such as ``--train-subset`` or ``--val-size`` live
    outside it, and so does the number of DDP ranks (the global batch is
    ``batch_size * world_size``).
    """
    return {
        "config": asdict(config),
        "data": data_fingerprint(images, labels),
        "world_size": world_size,
    }


#: How a differing part of the run identity is named in the refusal to resume.
_IDENTITY_WORDS = {
    "config": "another config",
    "data": "other training data",
    "world_size": "another DDP world size",
}


class Trainer:
    """Trains one model; single-process or one DDP rank, decided by ``context``.

    With ``torchrun`` each rank uses ``config.batch_size`` per step, so the global batch is
    ``batch_size * world_size`` at an unchanged learning rate.
    """

    def __init__(
        self,
        config: TrainConfig,
        num_classes: int,
        context: DistributedContext,
        checkpoint_dir: Path | None = None,
        in_channels: int | None = None,
        image_size: int | None = None,
    ) -> None:
        self.config = config
        self.context = context
        self.checkpoint_dir = checkpoint_dir
        seed_everything(config.seed)
        self.model = create_model(
            config.model, num_classes, head_for_loss(config.loss), in_channels, image_size
        ).to(context.device)
        self.criterion = build_loss(config.loss, config.tau if config.loss == "logitnorm" else None)
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov,
            weight_decay=config.weight_decay,
        )
        self.history: list[EpochStats] = []
        self.start_epoch = 0
        self.identity: dict[str, Any] = {}

    def fit(self, images: torch.Tensor, labels: torch.Tensor, resume: bool = True) -> TrainResult:
        """Train for ``config.epochs`` epochs, resuming from the last checkpoint when present.

        A checkpoint is resumed only if it was made with the same :func:`run_identity`; one from
        another config, other training data or another world size raises ``ValueError``.
        """
        self.identity = run_identity(self.config, images, labels, self.context.world_size)
        loader = self._loader(images, labels)
        total_steps = self.config.epochs * len(loader)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, cosine_lr_lambda(total_steps, self.config.lr)
        )
        if resume:
            self._load_checkpoint(scheduler)
        network: nn.Module = self.model
        if self.context.enabled:
            device_ids = [self.context.device.index] if self.context.device.type == "cuda" else None
            network = DistributedDataParallel(self.model, device_ids=device_ids)
        generator = torch.Generator()
        for epoch in range(self.start_epoch, self.config.epochs):
            self._reseed_epoch(loader, generator, epoch)
            stats = self._train_epoch(network, loader, scheduler, epoch, generator)
            self.history.append(stats)
            self._save_checkpoint(scheduler, epoch + 1)
        return TrainResult(self.model, list(self.history))

    def _reseed_epoch(self, loader: DataLoader, generator: torch.Generator, epoch: int) -> None:
        """Batch order and augmentation depend on (seed, epoch, rank) only, so a resumed run
        continues exactly as an uninterrupted one would."""
        sampler = loader.sampler.sampler  # type: ignore[union-attr]
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch)
        else:
            sampler.generator.manual_seed(self.config.seed * 1000 + epoch)
        generator.manual_seed((self.config.seed * 1000 + epoch) * 64 + self.context.rank)

    def _loader(self, images: torch.Tensor, labels: torch.Tensor) -> DataLoader:
        dataset = TensorDataset(images, labels)
        if self.context.enabled:
            sampler: Any = DistributedSampler(
                dataset, self.context.world_size, self.context.rank, seed=self.config.seed
            )
        else:
            sampler = RandomSampler(
                dataset, generator=torch.Generator().manual_seed(self.config.seed)
            )
        batches = BatchSampler(sampler, self.config.batch_size, drop_last=False)
        # batch_size=None: the dataset is indexed with a whole list of indices per batch.
        return DataLoader(dataset, sampler=batches, batch_size=None)

    def _train_epoch(
        self,
        network: nn.Module,
        loader: DataLoader,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        epoch: int,
        generator: torch.Generator,
    ) -> EpochStats:
        network.train()
        started = time.monotonic()
        totals = torch.zeros(4, dtype=torch.float64)  # loss sum, correct, count, logit-norm sum
        progress = tqdm(
            loader,
            desc=f"{self.config.loss} epoch {epoch + 1}/{self.config.epochs}",
            disable=not self.context.is_main,
            leave=False,
            mininterval=2.0,
        )
        for images, labels in progress:
            if self.config.augment:
                images = augment_batch(images, generator)
            images, labels = images.to(self.context.device), labels.to(self.context.device)
            logits = network(images)
            loss = self.criterion(logits, labels)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            scheduler.step()
            with torch.no_grad():
                n = labels.numel()
                totals += torch.tensor(
                    [
                        loss.item() * n,
                        (logits.argmax(1) == labels).sum().item(),
                        n,
                        torch.linalg.vector_norm(logits, dim=1).sum().item(),
                    ],
                    dtype=torch.float64,
                )
            progress.set_postfix(
                loss=f"{totals[0] / totals[2]:.3f}", acc=f"{totals[1] / totals[2]:.3f}"
            )
        totals = all_reduce_sum(totals.to(self.context.device), self.context).cpu()
        stats = EpochStats(
            epoch=epoch + 1,
            loss=float(totals[0] / totals[2]),
            accuracy=float(totals[1] / totals[2]),
            mean_logit_norm=float(totals[3] / totals[2]),
            lr=float(scheduler.get_last_lr()[0]),
            seconds=time.monotonic() - started,
            samples=int(totals[2]),
        )
        if self.context.is_main:
            print(
                f"[{self.config.loss}] epoch {stats.epoch}/{self.config.epochs} "
                f"loss {stats.loss:.4f} acc {stats.accuracy:.4f} "
                f"mean |f| {stats.mean_logit_norm:.2f} ({stats.seconds:.0f}s)",
                flush=True,
            )
        return stats

    def _checkpoint_path(self) -> Path | None:
        return None if self.checkpoint_dir is None else self.checkpoint_dir / CHECKPOINT_NAME

    def _save_checkpoint(self, scheduler: torch.optim.lr_scheduler.LRScheduler, epoch: int) -> None:
        path = self._checkpoint_path()
        if path is None or not self.context.is_main:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "epoch": epoch,
            "config": asdict(self.config),
            "identity": self.identity,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "history": [asdict(row) for row in self.history],
        }
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(path)  # atomic: a crash mid-write never leaves a torn checkpoint

    def _load_checkpoint(self, scheduler: torch.optim.lr_scheduler.LRScheduler) -> None:
        path = self._checkpoint_path()
        if path is None or not path.exists():
            return
        state = torch.load(path, map_location=self.context.device, weights_only=True)
        self._check_identity(state, path)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        self.history = [EpochStats(**row) for row in state["history"]]
        self.start_epoch = int(state["epoch"])
        if self.context.is_main:
            print(f"resumed from {path} at epoch {self.start_epoch}", flush=True)

    def _check_identity(self, state: dict[str, Any], path: Path) -> None:
        """Refuse a checkpoint of another run rather than silently continue (or reuse) it.

        Checkpoints from before the identity was stored carry only the config; their data are
        unknown, so they count as made with other training data.
        """
        saved = state.get("identity", {"config": state["config"]})
        differing = [_IDENTITY_WORDS[k] for k in self.identity if saved.get(k) != self.identity[k]]
        if differing:
            raise ValueError(
                f"checkpoint {path} was made with {' and '.join(differing)}; use a new directory"
            )


@torch.no_grad()
def predict_logits(
    model: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int = 1024
) -> np.ndarray:
    """Raw logits for a tensor of preprocessed images, in eval mode, as float32 numpy."""
    model.eval()
    chunks = [
        model(images[start : start + batch_size].to(device)).float().cpu()
        for start in range(0, len(images), batch_size)
    ]
    return torch.cat(chunks).numpy()

"""Models built by name, each a feature extractor plus a classification head.

``create_model("small_cnn", num_classes=10, head="linear")``. The registry is an explicit dict,
not filled by import side effects, so the list of models is readable in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from training.losses.isomax_plus import IsoMaxPlusHead
from training.models.resnet import ResNet18
from training.models.small_cnn import SmallCNN
from training.models.wide_resnet import WideResNet

HeadName = Literal["linear", "isomax_plus"]


@dataclass(frozen=True)
class ModelSpec:
    """What a model expects: the factory plus the input it was designed for."""

    factory: Callable[..., nn.Module]
    image_size: int
    in_channels: int


MODELS: dict[str, ModelSpec] = {
    "small_cnn": ModelSpec(SmallCNN, image_size=28, in_channels=1),
    "resnet18": ModelSpec(ResNet18, image_size=32, in_channels=3),
    "wrn40_2": ModelSpec(WideResNet, image_size=32, in_channels=3),
}


class Classifier(nn.Module):
    """Backbone features -> head logits. ``forward`` returns raw logits (what ONNX exports)."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def create_model(
    name: str,
    num_classes: int,
    head: HeadName = "linear",
    in_channels: int | None = None,
    image_size: int | None = None,
) -> Classifier:
    """Build ``name`` with a linear or IsoMax+ head; channels and size default to the spec's."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    spec = MODELS[name]
    backbone = spec.factory(
        in_channels=in_channels or spec.in_channels, image_size=image_size or spec.image_size
    )
    features = int(backbone.num_features)
    if head == "linear":
        return Classifier(backbone, nn.Linear(features, num_classes))
    if head == "isomax_plus":
        return Classifier(backbone, IsoMaxPlusHead(features, num_classes))
    raise ValueError(f"unknown head {head!r}")

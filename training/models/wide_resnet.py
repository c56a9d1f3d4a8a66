"""Wide ResNet WRN-40-2 (Zagoruyko & Komodakis, BMVC 2016): the LogitNorm paper's CIFAR network.

Depth 40 (6 pre-activation basic blocks per group), widening factor 2, dropout 0.3 as in the
paper's reference training code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PreActBlock(nn.Module):
    """BN-ReLU-conv twice, with dropout between, and a 1x1 shortcut when the shape changes."""

    def __init__(self, in_planes: int, planes: int, stride: int, dropout: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.dropout = dropout
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.bn1(x))
        residual = x if self.shortcut is None else self.shortcut(pre)
        out = self.conv1(pre)
        out = F.dropout(F.relu(self.bn2(out)), p=self.dropout, training=self.training)
        return self.conv2(out) + residual


class WideResNet(nn.Module):
    """Feature extractor: (N, C, 32, 32) -> (N, 64 * widen)."""

    def __init__(
        self,
        in_channels: int = 3,
        image_size: int = 32,
        depth: int = 40,
        widen: int = 2,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        del image_size
        if (depth - 4) % 6:
            raise ValueError("WRN depth must be 6n + 4")
        blocks_per_group = (depth - 4) // 6
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        self.stem = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        layers: list[nn.Module] = []
        in_planes = widths[0]
        for group, stride in zip(range(1, 4), (1, 2, 2), strict=True):
            for index in range(blocks_per_group):
                layers.append(
                    PreActBlock(in_planes, widths[group], stride if index == 0 else 1, dropout)
                )
                in_planes = widths[group]
        self.layers = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(in_planes)
        self.num_features = in_planes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn(self.layers(self.stem(x))))
        return torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)

"""A small CNN for 28x28 grayscale images (Fashion-MNIST): the default, CPU-trainable network.

Two conv blocks (16 and 32 channels, one 3x3 conv with batch norm and 2x2 max-pool each) and a
128-wide embedding: about 0.2 M parameters and 1 M multiply-adds per image. Sized for the CPU:
an epoch of Fashion-MNIST takes about 20 s on two cores, so the whole benchmark (five training
runs) fits in a CI-sized budget, and the ONNX file (under 1 MB) is small enough to commit.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class SmallCNN(nn.Module):
    """Feature extractor: (N, C, 28, 28) -> (N, 128)."""

    num_features = 128

    def __init__(self, in_channels: int = 1, image_size: int = 28) -> None:
        super().__init__()
        self.blocks = nn.Sequential(_conv_block(in_channels, 16), _conv_block(16, 32))
        spatial = image_size // 4
        self.embed = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * spatial * spatial, self.num_features),
            nn.BatchNorm1d(self.num_features),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self.blocks(x))

"""Image encoders over (B, C, S, S) float tensors: ``conv`` (the seed's) and ``cnn`` (small ResNet, the default)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...registry import ENCODERS


@ENCODERS.register("conv", modality="image")
class ConvEncoder(nn.Module):
    """Conv2D(filters, k x k, valid, relu) -> MaxPool(pool) -> Flatten: the seed's image branch."""

    def __init__(self, in_channels: int, image_size: int, filters: int = 32, kernel_size: int = 3, pool: int = 2):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(in_channels, filters, kernel_size), nn.ReLU(), nn.MaxPool2d(pool),
                                 nn.Flatten())
        side = (image_size - kernel_size + 1) // pool
        self.output_dim = filters * side * side

    def forward(self, images: Tensor) -> Tensor:
        """images (B, C, S, S) -> (B, filters * side * side)."""
        return self.net(images)


class BasicBlock(nn.Module):
    """Two 3x3 conv + batch-norm layers with a residual connection (ResNet-18's block)."""

    def __init__(self, in_dim: int, out_dim: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_dim, out_dim, 3, stride, 1, bias=False), nn.BatchNorm2d(out_dim), nn.ReLU(inplace=True),
            nn.Conv2d(out_dim, out_dim, 3, 1, 1, bias=False), nn.BatchNorm2d(out_dim))
        self.skip = (nn.Identity() if stride == 1 and in_dim == out_dim else
                     nn.Sequential(nn.Conv2d(in_dim, out_dim, 1, stride, bias=False), nn.BatchNorm2d(out_dim)))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.body(x) + self.skip(x))


@ENCODERS.register("cnn", modality="image")
class ResNetEncoder(nn.Module):
    """A small ResNet: 3x3 stem, one residual block per width (each later one halves the resolution), then average
    pooling to a ``pool_grid`` x ``pool_grid`` grid (1 = global pooling; 2 keeps coarse layout, useful for icons).

    Runs in channels-last memory layout, which CPU convolutions (and bf16 autocast) are fastest with.
    """

    def __init__(self, in_channels: int, widths: tuple[int, ...] = (32, 64, 128), pool_grid: int = 1):
        super().__init__()
        widths = tuple(widths)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]),
                                  nn.ReLU(inplace=True))
        blocks = [BasicBlock(widths[0], widths[0], 1)] + [BasicBlock(a, b, 2) for a, b in zip(widths, widths[1:])]
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(pool_grid), nn.Flatten())
        self.output_dim = widths[-1] * pool_grid * pool_grid
        self.to(memory_format=torch.channels_last)

    def forward(self, images: Tensor) -> Tensor:
        """images (B, C, S, S) -> (B, widths[-1] * pool_grid**2)."""
        x = images.contiguous(memory_format=torch.channels_last)
        return self.pool(self.blocks(self.stem(x)))

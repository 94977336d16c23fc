"""A pretrained backbone's encoder: the backbone (only when fine-tuned) -> optional LayerNorm and dropout -> a learned
linear projection (open_clip's trunk + projection). The modality plugins that bring backbones build on it."""

from __future__ import annotations

from torch import Tensor, nn


class ProjectedBackbone(nn.Module):
    """Input: frozen, the cached backbone features (B, F); fine-tuned (``backbone`` given), what the backbone reads
    (token ids or pixels). ``proj_dim: 0`` keeps the backbone's features (B, F) as the output (a retrieval model's
    locked tower)."""

    def __init__(self, feature_dim: int, backbone: nn.Module | None = None, proj_dim: int = 256, norm: bool = False,
                 dropout: float = 0.0):
        super().__init__()
        self.backbone = backbone.train() if backbone is not None else None
        self.proj = nn.Sequential(*([nn.LayerNorm(feature_dim)] if norm else []),
                                  *([nn.Dropout(dropout)] if dropout else []),
                                  nn.Linear(feature_dim, proj_dim) if proj_dim else nn.Identity())
        self.output_dim = proj_dim or feature_dim

    def forward(self, x: Tensor) -> Tensor:
        """(B, F) features, or (B, L) ids / (B, 3, S, S) images when fine-tuned -> (B, output_dim)."""
        return self.proj(self.backbone(x) if self.backbone is not None else x)

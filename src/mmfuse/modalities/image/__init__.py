"""Image columns: paths to image files, decoded with Pillow; encoders conv (the seed's), cnn (a small ResNet) and the
pretrained efficientnet_lite0 (its own scaling, frozen features cached: the ``pretrained_image`` processor)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...core.modality import Cell, Modality, check_files_exist, path_share
from ...registry import MODALITIES, PROCESSORS
from . import encoders  # noqa: F401  (registers the encoders)
from .pretrained import PretrainedImageProcessor
from .processor import ImageProcessor, has_colour

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def looks_like_images(values: pd.Series) -> str | None:
    return "paths ending in .png/.jpg/.jpeg" if path_share(values, IMAGE_SUFFIXES) >= 0.8 else None


def image_traits(values: pd.Series, root: Path) -> dict[str, bool]:
    """``colour``: whether any of the first images has colour (grayscale columns get a from-scratch encoder by
    default: ImageNet backbones gain little on them)."""
    return {"colour": has_colour(values, root)}


PROCESSORS.add(ImageProcessor.kind, ImageProcessor)
PROCESSORS.add(PretrainedImageProcessor.kind, PretrainedImageProcessor)
MODALITIES.add("image", Modality("image", input="image", processor="image", default_encoder="cnn",
                                 detect=looks_like_images, priority=30, check=check_files_exist("image"),
                                 traits=image_traits, cell=Cell(file=True, widget="file", accept="image/*")))

"""Image columns: paths to image files, decoded with Pillow; encoders conv (the seed's) and cnn (a small ResNet)."""

from __future__ import annotations

import pandas as pd

from ...core.modality import Modality, check_files_exist, path_share
from ...registry import MODALITIES, PROCESSORS
from . import encoders  # noqa: F401  (registers the encoders)
from .processor import ImageProcessor

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def looks_like_images(values: pd.Series) -> str | None:
    return "paths ending in .png/.jpg/.jpeg" if path_share(values, IMAGE_SUFFIXES) >= 0.8 else None


PROCESSORS.add(ImageProcessor.kind, ImageProcessor)
MODALITIES.add("image", Modality("image", input="image", processor="image", default_encoder="cnn",
                                 detect=looks_like_images, priority=30, check=check_files_exist("image")))

"""Image files -> uint8 arrays with Pillow (shared by every processor that reads images)."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image


def load_image(source: Path | BinaryIO, size: int, channels: int) -> np.ndarray:
    """An image file (path or open binary file) -> uint8 (C, size, size); transparency composited on white."""
    with Image.open(source) as img:
        img.load()
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")  # transparent areas become white, not black
            img = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            img.alpha_composite(rgba)
        img = img.convert("L" if channels == 1 else "RGB").resize((size, size), Image.Resampling.BILINEAR)
        array = np.array(img, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)  # (C, S, S)

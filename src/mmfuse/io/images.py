"""Image files -> uint8 arrays with Pillow (shared by every processor that reads images).

The pixel count is read from the header before anything is decoded: an image above ``max_pixels`` is refused as
unreadable (a decompression bomb costs no memory), and JPEGs are decoded at a reduced scale when they are far larger
than the target size. 16-bit and float images (Pillow modes I;16*, I, F) are scaled to 0-255 by their range, not
clipped.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

MAX_PIXELS = 40_000_000  # default cap: a 40-megapixel photo; Pillow itself refuses from ~179 Mpx
WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")  # 16-bit, 32-bit integer and float greyscale


class ImageTooLarge(ValueError):
    """An image whose header declares more pixels than the configured cap."""


def open_image(source: Path | BinaryIO) -> Image.Image:
    """An image opened lazily (its header read, nothing decoded); one Pillow refuses as a decompression bomb is
    ImageTooLarge, and Pillow's own size warning is left to the caller's cap."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(source)
        except Image.DecompressionBombError as err:
            raise ImageTooLarge(f"too large: {err}") from None


def load_image(source: Path | BinaryIO, size: int, channels: int, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """An image file (path or open binary file) -> uint8 (C, size, size); transparency composited on white.
    Damaged data is an OSError or a ValueError, whatever Pillow's decoder raised."""
    with open_image(source) as img:
        width, height = img.size
        if width * height > max_pixels:
            raise ImageTooLarge(f"{width} x {height} = {width * height / 1e6:.1f} megapixels, above the "
                                f"{max_pixels / 1e6:g}-megapixel limit (preprocess.image.max_pixels)")
        if img.format == "JPEG":
            img.draft("L" if channels == 1 else "RGB", (size, size))  # decode at 1/2, 1/4 or 1/8 scale
        try:
            img.load()
        except (OSError, ValueError):
            raise
        except Exception as err:  # Pillow's decoders raise SyntaxError, EOFError, struct.error... on damaged data
            raise ValueError(f"damaged {img.format or 'image'} data ({err})") from None
        if img.mode in WIDE_MODES:
            img = Image.fromarray(to_uint8(np.asarray(img)))
        elif img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")  # transparent areas become white, not black
            img = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            img.alpha_composite(rgba)
        img = img.convert("L" if channels == 1 else "RGB").resize((size, size), Image.Resampling.BILINEAR)
        array = np.array(img, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)  # (C, S, S)


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Wide greyscale pixels (H, W) -> uint8: 16-bit integers over 0-65535; other integers over 0-255 or
    0-65535, whichever holds them; floats in [0, 1] times 255; anything else min-max stretched. NaN/inf -> 0."""
    values = np.nan_to_num(pixels.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    integers, lowest, highest = pixels.dtype.kind in "ui", float(values.min()), float(values.max())
    if integers and pixels.dtype.itemsize == 2:
        low, high = 0.0, 65535.0
    elif integers and lowest >= 0 and highest <= 65535:
        low, high = 0.0, 255.0 if highest <= 255 else 65535.0
    elif not integers and lowest >= 0 and highest <= 1:
        low, high = 0.0, 1.0
    else:
        low, high = lowest, max(highest, lowest + 1e-12)
    return np.clip(np.rint((values - low) / (high - low) * 255), 0, 255).astype(np.uint8)

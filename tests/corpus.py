"""Makers of bad inputs for tests/test_bad_input.py: each writes one kind of broken file or table on the fly."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from click.testing import CliRunner
from PIL import Image

from mmfuse.errors import MMFuseError


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header declares ``width`` x ``height`` greyscale pixels and whose data is a stub: what a
    decompression bomb looks like to a reader that trusts the header (costs nothing to write)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def truncated_png(path: Path) -> Path:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(buffer, "PNG")
    path.write_bytes(buffer.getvalue()[:40])
    return path


def png_broken_chunk(path: Path) -> Path:
    """A 32 x 32 PNG whose image data is split in two chunks with garbage between them: Pillow's decoder raises
    SyntaxError ("broken PNG file") while loading, after the header read well."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    pixels = zlib.compress(b"".join(b"\0" + b"\xff\0\0" * 32 for _ in range(32)))
    ihdr = struct.pack(">IIBBBBB", 32, 32, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", pixels[:20])
                     + b"\0\0\0\x05\xff\xfe\xfd\xfcabcde0000" + chunk(b"IDAT", pixels[20:]) + chunk(b"IEND", b""))
    return path


def npy_claiming(path: Path, shape: tuple[int, ...], data: bytes = b"\0" * 64) -> Path:
    """A .npy file whose header declares float64 ``shape`` but which holds only ``data``: what a reader that
    allocates from the header would take terabytes for."""
    header = repr({"descr": "<f8", "fortran_order": False, "shape": shape}).encode("latin1")
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data)
    return path


def npy_unparsable_header(path: Path) -> Path:
    """A .npy file whose header numpy's own parser cannot tokenize (an unterminated string): numpy raises
    ``tokenize.TokenError``, not a ValueError."""
    header = b"""{'descr': "<f4', 'fortran_order': False, 'shape': (10, 3, }"""
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 120)
    return path


def image_16bit(path: Path, value: int) -> Path:
    """A 16-bit greyscale PNG (Pillow mode I;16) filled with ``value`` (0-65535)."""
    Image.fromarray(np.full((8, 8), value, dtype=np.uint16)).save(path)
    return path


def float_tiff(path: Path, value: float) -> Path:
    """A 32-bit float TIFF (Pillow mode F) filled with ``value``."""
    Image.fromarray(np.full((8, 8), value, dtype=np.float32), "F").save(path)
    return path


def int32_png(path: Path, value: int) -> Path:
    """A Pillow mode-I image (32-bit integers) saved as TIFF."""
    Image.fromarray(np.full((8, 8), value, dtype=np.int32), "I").save(path)
    return path


def long_stereo_flac(path: Path, seconds: float, rate: int = 8000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    sf.write(str(path), np.stack([tone, tone], axis=1), rate, format="FLAC")
    return path


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    @property
    def error_line(self) -> str:
        """The one line a failed command printed (its last non-empty stderr/usage line)."""
        lines = [line for line in (self.err + self.out).splitlines() if line.strip()]
        return lines[-1] if lines else ""


def cli(*args: object) -> Outcome:
    """Run ``mmfuse ARGS`` in this process as the console script would: an MMFuseError is one ``error:`` line and
    exit code 2; any other exception propagates (a traceback fails the test)."""
    from unittest.mock import patch

    from mmfuse.cli import console as screen
    from mmfuse.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with patch.multiple(screen.console, _file=out, _width=100_000), \
            patch.multiple(screen.errors, _file=err, _width=100_000):  # one message, one line
        result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)
    if isinstance(result.exception, MMFuseError):
        return Outcome(2, out.getvalue() + result.output, err.getvalue() + f"error: {result.exception}\n")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Outcome(result.exit_code, out.getvalue() + result.output, err.getvalue())

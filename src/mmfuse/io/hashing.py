"""SHA-256 of bytes and files (file hashes memoised per process for large, unchanging weights files)."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path


def sha256_bytes(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@lru_cache(maxsize=None)
def file_sha256(path: str) -> str:
    """SHA-256 of a file that does not change while the process runs (pretrained weights), memoised."""
    return sha256_file(path)

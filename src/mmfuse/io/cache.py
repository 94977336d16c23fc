"""On-disk cache of frozen-encoder features, so a backbone runs once per distinct text or file across epochs and runs.

A feature is stored under ``ROOT/<identity hash>/<key[:2]>/<key>.npy``: the identity (backbone, package version,
weights hash, preprocessing settings) picks the folder, the key is the SHA-256 of the value's content (the text, or
the file's bytes), so an edited file or a changed backbone is a miss, never a stale hit. Arrays are plain ``.npy``
read with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ContextManager

import numpy as np

from .hashing import sha256_bytes
from .locks import file_lock


def default_cache_dir() -> Path:
    """``$MMFUSE_CACHE_DIR``, else ``$XDG_CACHE_HOME/mmfuse/features``, else ``~/.cache/mmfuse/features``."""
    if os.environ.get("MMFUSE_CACHE_DIR"):
        return Path(os.environ["MMFUSE_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mmfuse" / "features"


class FeatureCache:
    """Features of one encoder identity; counts hits and misses."""

    def __init__(self, root: str | Path | None, identity: dict[str, Any]):
        text = json.dumps(identity, sort_keys=True)
        self.folder = Path(root or default_cache_dir()) / sha256_bytes(text.encode())[:16]
        self.identity_text = text
        self.hits = self.misses = 0

    def lock(self) -> ContextManager[bool]:
        """This identity's exclusive lock, held while looking up and computing features, so processes that share
        the cache (DDP ranks started together) compute each feature once (none for a read-only cache)."""
        return file_lock(self.folder / ".lock")

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        """The stored feature vector for a content key, or None (a miss)."""
        path = self._path(key)
        try:
            array = np.load(path, allow_pickle=False)
        except (FileNotFoundError, ValueError, OSError):
            self.misses += 1
            return None
        self.hits += 1
        return array

    def put(self, key: str, features: np.ndarray) -> None:
        """Store one feature vector (written to a temporary name, then renamed: readers never see half a file)."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        identity = self.folder / "identity.json"
        if not identity.exists():
            identity.write_text(self.identity_text)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(features, dtype=np.float32), allow_pickle=False)
        os.replace(tmp, path)

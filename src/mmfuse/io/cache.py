"""On-disk cache of frozen-encoder features, so a backbone runs once per distinct text or file across epochs and runs.

A feature is stored under ``ROOT/<identity hash>/<key[:2]>/<key>.f32``: the identity (backbone, package version,
weights hash, preprocessing settings, entry format) picks the folder, the key is the SHA-256 of the value's content
(the text, or the file's bytes), so an edited file or a changed backbone is a miss, never a stale hit.

An entry checks itself: ``MAGIC``, its shape as JSON, the float32 values, then the SHA-256 of the key, shape and
values. A read that does not match (truncated, corrupted, a directory, an entry copied from another key, another
shape than the caller expects) is a miss: the feature is computed again and the entry rewritten; the cache counts
these (``rejected``) and logs the first. So is an entry that verifies but is not one (a forged entry with a
recomputed digest: a header that is not JSON, fewer values than its shape, values that are not finite). A cache that cannot be written (read-only, a file in its place) still
computes every feature, keeps none, and logs that once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import struct
from pathlib import Path
from typing import Any, ContextManager

import numpy as np

from .bounded_json import SMALL_BYTES, loads
from .hashing import sha256_bytes
from .locks import file_lock

log = logging.getLogger("mmfuse")

MAGIC = b"MMFUSEF1"  # entry format 1: magic, uint32 header length, header JSON {"shape": [...]}, float32 values, digest
FORMAT = 2  # in the identity: entries of the plain .npy format (1) sit in other folders and are never read


def default_cache_dir() -> Path:
    """``$MMFUSE_CACHE_DIR``, else ``$XDG_CACHE_HOME/mmfuse/features``, else ``~/.cache/mmfuse/features``."""
    if os.environ.get("MMFUSE_CACHE_DIR"):
        return Path(os.environ["MMFUSE_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mmfuse" / "features"


class FeatureCache:
    """Features of one encoder identity; counts hits, misses and rejected entries."""

    def __init__(self, root: str | Path | None, identity: dict[str, Any]):
        text = json.dumps({**identity, "cache_format": FORMAT}, sort_keys=True)
        self.folder = Path(root or default_cache_dir()) / sha256_bytes(text.encode())[:16]
        self.identity_text = text
        self.hits = self.misses = self.rejected = 0
        self.writable = True

    def lock(self) -> ContextManager[bool]:
        """This identity's exclusive lock, held while looking up and computing features, so processes that share
        the cache (DDP ranks started together) compute each feature once (none for a read-only cache)."""
        return file_lock(self.folder / ".lock")

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.f32"

    def holds(self, key: str) -> bool:
        """Whether an entry for a content key is stored (not read: ``get`` checks it)."""
        return self._path(key).is_file()

    def get(self, key: str, shape: tuple[int, ...] | None = None) -> np.ndarray | None:
        """The stored float32 features for a content key (of ``shape``, when given), or None (a miss)."""
        path = self._path(key)
        try:
            data = path.read_bytes()
        except OSError as err:
            self.misses += 1
            if not isinstance(err, FileNotFoundError):
                self._reject(path, f"cannot be read ({err.strerror or err})")
            return None
        array, why_not = _decode(data, key, shape)
        if array is None:
            self.misses += 1
            self._reject(path, why_not)
            return None
        self.hits += 1
        return array

    def put(self, key: str, features: np.ndarray) -> None:
        """Store one feature array (written to a temporary name, then renamed: readers never see half a file)."""
        if not self.writable:
            return
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            identity = self.folder / "identity.json"
            if not identity.exists():
                identity.write_text(self.identity_text)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(_encode(key, np.ascontiguousarray(features, dtype=np.float32)))
            if path.is_dir():  # a folder where the entry belongs: rejected on reading, replaced now
                shutil.rmtree(path)
            os.replace(tmp, path)
        except OSError as err:
            self.writable = False
            log.warning(f"feature cache {self.folder.parent} cannot be written ({err.strerror or err}): features are "
                        "computed but not kept; pass --cache-dir a writable folder")

    def _reject(self, path: Path, why: str) -> None:
        self.rejected += 1
        if self.rejected == 1:
            log.warning(f"feature cache entry {path} {why}: computed again (further rejected entries are counted, "
                        "not logged)")


def _encode(key: str, values: np.ndarray) -> bytes:
    header = json.dumps({"shape": list(values.shape)}).encode()
    body = struct.pack("<I", len(header)) + header + values.tobytes()
    return MAGIC + body + hashlib.sha256(key.encode() + body).digest()


def _decode(data: bytes, key: str, shape: tuple[int, ...] | None) -> tuple[np.ndarray | None, str]:
    """(the values, "") or (None, why the entry is not one for ``key`` of ``shape``)."""
    if len(data) < len(MAGIC) + 4 + 32 or not data.startswith(MAGIC):
        return None, "is not a cache entry (truncated or another format)"
    body, digest = data[len(MAGIC):-32], data[-32:]
    if hashlib.sha256(key.encode() + body).digest() != digest:
        return None, "fails its checksum (damaged, truncated, or another key's entry)"
    (length,) = struct.unpack("<I", body[:4])
    try:
        stored = tuple(loads(body[4:4 + length], "its header", max_depth=2, max_chars=SMALL_BYTES)["shape"])
    except (ValueError, TypeError, KeyError) as err:
        return None, f"has a header that is not one ({err})"
    if not all(isinstance(n, int) and n >= 0 for n in stored):
        return None, f"has a header whose shape {stored} is not one"
    if shape is not None and stored != tuple(shape):
        return None, f"holds shape {stored}, not {tuple(shape)}"
    values = body[4 + length:]
    if len(values) != 4 * math.prod(stored):
        return None, f"holds {len(values) // 4:,} values, not the {math.prod(stored):,} its shape {stored} says"
    array = np.frombuffer(values, dtype=np.float32).reshape(stored)
    if not np.isfinite(array).all():
        return None, "holds values that are not finite"
    return array.copy(), ""

"""A portfolio's cheap members in a bundle: ``portfolio.json`` (each member's settings and fitted values, LightGBM's
model text, the ensemble weights, temperatures and leaderboard) and ``portfolio.safetensors`` (their arrays). Both
are listed in the manifest like every other file; a config.json that names members requires them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load, load_file, save, save_file

from .bundle import damaged, read_json, write_json

MEMBERS_JSON, MEMBERS_ARRAYS = "portfolio.json", "portfolio.safetensors"


def write_members(folder: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    save_file(arrays, str(folder / MEMBERS_ARRAYS))
    write_json(folder / MEMBERS_JSON, meta)


def read_members(folder: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    for name in (MEMBERS_JSON, MEMBERS_ARRAYS):
        if not (folder / name).is_file():
            raise damaged(folder, f"{name} is missing (config.json names portfolio members)")
    meta = read_json(folder / MEMBERS_JSON, folder)
    try:
        arrays = load_file(str(folder / MEMBERS_ARRAYS))
    except (SafetensorError, OSError, ValueError) as err:
        raise damaged(folder, f"{MEMBERS_ARRAYS} is not a readable safetensors file ({err})") from None
    return meta, arrays


def members_to_bytes(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    """The same content as one byte string (8-byte JSON length, JSON, safetensors), to send to other processes."""
    head = json.dumps(meta).encode("utf-8")
    return len(head).to_bytes(8, "little") + head + save({k: np.ascontiguousarray(v) for k, v in arrays.items()})


def members_from_bytes(data: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + size].decode("utf-8")), load(data[8 + size:])

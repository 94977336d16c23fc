"""A portfolio's cheap members in a bundle: ``portfolio.json`` (each member's settings and fitted values, LightGBM's
model text, the ensemble weights, temperatures and leaderboard) and ``portfolio.safetensors`` (their arrays). Both
are listed in the manifest like every other file; a config.json that names members requires them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

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

"""What a resumed fit must share with the one it continues, and the interrupted fit's state it finds: a refusal to
start over a checkpoint folder unless told to resume or restart, and the fingerprints (SHA-256 of the settings, the
rows and the files the tables name) that a resume checks part by part."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.columns import ColumnInfo
from ..core.modality import is_empty, resolve_path
from ..core.sets import set_elements
from ..errors import ConfigError
from ..io.checkpoint import foreign_entries, remove_checkpoints, saved_epoch, saved_members
from ..registry import MODALITIES

log = logging.getLogger("mmfuse")


def check_checkpoint_use(folder: str | Path | None, resume: bool, restart: bool) -> None:
    """Refuse to start over a checkpoint an interrupted fit left in ``folder``, unless ``resume`` continues it or
    ``restart`` discards it (not both)."""
    if resume and restart:
        raise ConfigError("resume and restart exclude each other: continue an interrupted fit or discard it")
    if folder is None:
        return
    folder = Path(folder)
    foreign = foreign_entries(folder)
    if foreign or (folder.exists() and not folder.is_dir()):
        held = f"holds {', '.join(repr(n) for n in foreign[:3])}{', ...' if len(foreign) > 3 else ''}" if foreign \
            else "is not a folder"
        raise ConfigError(f"{folder} exists and is not an mmfuse checkpoint folder (it {held}): mmfuse keeps an "
                          "interrupted fit's state there, so move it away or save the model elsewhere")
    if resume:
        return
    epoch, members = saved_epoch(folder), saved_members(folder)
    if epoch is None and not members:
        return
    saved = f"saved after epoch {epoch}" if epoch is not None else f"members saved: {', '.join(members)}"
    if not restart:
        raise ConfigError(f"{folder} holds an interrupted fit ({saved}): continue it with --resume "
                          "(resume=True), or discard it with --restart (restart=True)")
    log.warning(f"restart: discarded the interrupted fit in {folder} ({saved})")
    remove_checkpoints(folder)


def run_fingerprint(parts: dict[str, Any]) -> dict[str, str]:
    """Each part of what a resumed fit must share (``_resume_parts``) -> its SHA-256, so a refusal names the parts
    that changed."""
    return {name: hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
            for name, value in parts.items()}


def frame_digest(frame: pd.DataFrame) -> str:
    """SHA-256 of a table's column names and cells."""
    digest = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame.astype(str), index=True).to_numpy().tobytes())
    return digest.hexdigest()


def files_digest(frame: pd.DataFrame, columns: list[ColumnInfo], root: Path) -> str:
    """SHA-256 of the size and modification time of every file the table's file columns name (set cells: each
    element), so that a resumed fit notices a file that changed since (a missing one counts as missing)."""
    digest = hashlib.sha256()
    for col in columns:
        if col.modality == "ignore" or col.name not in frame.columns or not MODALITIES.get(col.modality).cell.file:
            continue
        sep = col.traits["set"].get("sep") if "set" in col.traits else None
        for value in frame[col.name]:
            try:
                elements = set_elements(value, root, sep) if "set" in col.traits else [] if is_empty(value) else [value]
            except (ValueError, OSError):
                elements = [str(value)]
            for element in elements:
                try:
                    info = resolve_path(element, root).stat()
                    digest.update(f"{element}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
                except (OSError, ValueError):
                    digest.update(f"{element}\0missing\n".encode())
    return digest.hexdigest()

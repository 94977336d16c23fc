"""Edit a saved model folder as someone who can write it would, then re-seal it: every checksum recomputed, so
only mmfuse's own checks on the content stand between the folder and the process that loads it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from mmfuse.io.hashing import sha256_file


def reseal(folder: Path) -> None:
    """Recompute manifest.json over every other file of the folder (bundle format 6: config.json included)."""
    manifest = {f.name: sha256_file(f) for f in sorted(folder.iterdir()) if f.name != "manifest.json" and f.is_file()}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def edit_json(folder: Path, name: str, change: Callable[[Any], Any], sealed: bool = True) -> None:
    """Apply ``change`` to one JSON file of the folder (it edits the value in place), then re-seal."""
    data = json.loads((folder / name).read_text())
    change(data)
    (folder / name).write_text(json.dumps(data))
    if sealed:
        reseal(folder)

"""What detection decided for one column."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ColumnInfo:
    """One column's modality, why it was chosen (shown to the user before training), and its traits (what the
    values are like, e.g. ``{"colour": False}``; the presets' encoder rules match on them)."""

    name: str
    modality: str
    reason: str
    traits: dict[str, Any] = field(default_factory=dict)

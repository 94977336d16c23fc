"""What detection decided for one column."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ColumnInfo:
    """One column's modality and why it was chosen (shown to the user before training)."""

    name: str
    modality: str
    reason: str

"""Where ``fit`` spends its time: a stopwatch over named stages, the stage table kept in ``metrics.json``, and the
one-line summary ``mmfuse fit`` prints."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator


class Stopwatch:
    """Seconds per named stage (``with clock("read"): ...``), and the total since it was made."""

    def __init__(self) -> None:
        self.start, self.seconds = time.perf_counter(), {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        begin = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - begin

    def total(self) -> float:
        return time.perf_counter() - self.start

    def move(self, stage: str, into: str, seconds: float) -> None:
        """Count ``seconds`` of ``stage`` as ``into`` (a part of a stage that has its own name)."""
        self.seconds[stage] = self.seconds.get(stage, 0.0) - seconds
        self.seconds[into] = self.seconds.get(into, 0.0) + seconds


def stage_seconds(clock: Stopwatch, features: dict[str, dict[str, dict[str, float]]],
                  history: list[dict[str, float]]) -> dict[str, float]:
    """Where ``fit`` spent its time: reading, the columns (detection, encoders, the text probe), fitting and applying
    preprocessing (of which computing pretrained features), set-up (building the model, loading Lightning), training
    (of which the epochs' forward/backward steps and validation), and the total."""
    stages = {name: round(value, 3) for name, value in clock.seconds.items()}
    stages["features"] = round(sum(e.get("seconds", 0.0) for split in features.values() for e in split.values()), 3)
    stages["epochs"] = round(sum(h.get("train_seconds", 0.0) for h in history), 3)
    stages["validation"] = round(sum(h.get("valid_seconds", 0.0) for h in history), 3)
    stages["total"] = round(clock.total(), 3)
    return stages


def describe_stages(stages: dict[str, float], epochs: int) -> str:
    """One line: ``read 0.1 s, preprocessing 2.0 s (pretrained features 1.5 s), 12 epochs 30.1 s + validation ...``."""
    preprocessing = stages.get("fit preprocessing", 0.0) + stages.get("preprocess", 0.0)
    members = f", members {stages['members']:.1f} s" if "members" in stages else ""
    columns = f", columns and encoders {stages['columns']:.1f} s" if stages.get("columns", 0.0) >= 0.5 else ""
    return (f"read {stages.get('read', 0.0):.1f} s{columns}, preprocessing {preprocessing:.1f} s (pretrained features "
            f"{stages['features']:.1f} s){members}, set-up {stages.get('set-up', 0.0):.1f} s, {epochs} epochs "
            f"{stages['epochs']:.1f} s + validation "
            f"{stages['validation']:.1f} s, total {stages['total']:.1f} s")

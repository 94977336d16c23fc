"""A short time limit and frozen backbones: when computing the frozen features of a fit's inputs would take more than
three quarters of its ``time_limit`` (estimated from the training and validation values at a backbone's rate per text
and character, or per image; no warm cache assumed), those inputs get their modality's fast encoder instead (text:
its n-grams alone, the lexical path the default reads beside MiniLM; a colour image: the from-scratch CNN the preset
gives grayscale images), so the cheap members and the network still get time. On movies-rating at a 60 s limit,
MiniLM's features of five text columns took 70 s and left the fit the network alone for one second (RMSE 1.093,
against TF-IDF + LogisticRegression's 1.010 in 35 s).
"""

from __future__ import annotations

import pandas as pd

from ..config import EncoderCfg, ModelConfig
from ..core.frozen import FrozenFeatureProcessor
from ..core.modality import nonempty_strings
from ..pipeline import InputPlan
from ..portfolio.budget import FROZEN_SHARE
from ..registry import PROCESSORS

# at 2 threads on the project's reference machine (benchmarks/realdata.py, cold cache, train + valid rows): MiniLM
# 0.5 ms a non-empty text + 12 us a character (fortunes' 158-character quotes 2.3 ms measured, debian's 189-character
# descriptions 2.7 ms, movies' 56-character fields 1.3 ms), empty cells nothing; EfficientNet-Lite0 ~25 ms an image
TEXT_SECONDS, TEXT_SECONDS_PER_CHAR, IMAGE_SECONDS = 5e-4, 1.2e-5, 2.5e-2
CHARS_PER_TOKEN = 4  # text past max_length tokens is truncated: it costs nothing
SAMPLE = 10_000  # values a column's share of empty cells and mean length are read from


def fast_encoder(plan: InputPlan, config: ModelConfig) -> EncoderCfg | None:
    """The encoder an input gets instead of its frozen one (None: its kind has no fast one)."""
    if plan.kind == "text":
        return EncoderCfg(name="ngrams", params=dict(plan.encoder_params.get("ngrams") or {}))
    if plan.kind == "image":
        rule = next((r for r in config.rules if r.input == "image" and r.encoder.name != plan.encoder), None)
        return rule.encoder if rule is not None else EncoderCfg(name="cnn")
    return None


def value_seconds(kind: str, values: pd.Series, settings: dict) -> float:
    """The estimated seconds of one column's frozen features over ``values`` (N,) at 2 threads (read from a sample
    of at most ``SAMPLE`` values, so a large table's start costs no more)."""
    sample = values.sample(min(len(values), SAMPLE), random_state=0)
    filled = nonempty_strings(sample)
    if filled.empty:
        return 0.0
    cells = len(values) * len(filled) / len(sample)
    if kind == "image":
        return IMAGE_SECONDS * cells
    chars = filled.str.len().clip(upper=CHARS_PER_TOKEN * settings.get("max_length", 128)).mean()
    return cells * (TEXT_SECONDS + TEXT_SECONDS_PER_CHAR * chars)


def frozen_seconds(plan: dict[str, InputPlan], frames: list[pd.DataFrame], threads: int) -> dict[str, float]:
    """Input name -> the estimated seconds of its frozen features for the rows of ``frames`` (train, valid)."""
    return {name: sum(value_seconds(p.kind, f[c], p.processor_settings) for f in frames for c in p.columns)
            * 2 / max(threads, 1)
            for name, p in plan.items()
            if p.kind in ("text", "image") and issubclass(PROCESSORS.get(p.processor), FrozenFeatureProcessor)}


def within_time(plan: dict[str, InputPlan], config: ModelConfig, frames: list[pd.DataFrame], time_limit: float,
                threads: int, fixed: set[str]) -> tuple[ModelConfig, str | None]:
    """The config with fast encoders for the frozen inputs when all frozen features would take more than
    ``FROZEN_SHARE`` of ``time_limit`` (the inputs whose column or kind the user's own encoder choice names in
    ``fixed`` keep theirs), and the line that says so (None: the config as it was)."""
    costs = frozen_seconds(plan, frames, threads)
    total = sum(costs.values())
    swapped = {name: fast for name in costs if name not in fixed and plan[name].kind not in fixed
               and (fast := fast_encoder(plan[name], config))}
    if total <= FROZEN_SHARE * time_limit or not swapped:
        return config, None
    line = (f"time limit {time_limit:g} s: the frozen features of {', '.join(map(repr, costs))} would take "
            f"~{total:.0f} s (over {FROZEN_SHARE:.0%} of it): "
            + "; ".join(f"{name!r} reads {enc.name}" for name, enc in swapped.items()) + " instead")
    return config.model_copy(update={"column_encoders": {**config.column_encoders, **swapped}}, deep=True), line

"""A short time limit and frozen backbones: when computing the frozen features of a fit's inputs would take more than
the budget's share of its ``time_limit`` (estimated from the training and validation values at a backbone's rate per
text and character, or per image, at the fit's thread count (``portfolio.rates``), less the share of a sample of the
values that the feature cache already holds), those inputs get their modality's fast encoder instead (text:
its n-grams alone, the lexical path the default reads beside MiniLM; a colour image: the from-scratch CNN the preset
gives grayscale images), so the cheap members and the network still get time. On movies-rating at a 60 s limit,
MiniLM's features of five text columns took 70 s and left the fit the network alone for one second (RMSE 1.093,
against TF-IDF + LogisticRegression's 1.010 in 35 s).
"""

from __future__ import annotations

import pandas as pd

from pathlib import Path

from ..config import EncoderCfg, ModelConfig
from ..core.columns import ColumnInfo
from ..core.frozen import FrozenFeatureProcessor
from ..core.modality import nonempty_strings
from ..pipeline import InputPlan
from ..portfolio.budget import FROZEN_SHARE, TimeBudget
from ..portfolio.rates import IMAGE_SECONDS, TEXT_SECONDS, TEXT_SECONDS_PER_CHAR, at_threads
from ..registry import PROCESSORS
from .splits import FitSplits

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
    """The estimated seconds of one column's frozen features over ``values`` (N,) at the reference thread count (read
    from a sample of at most ``SAMPLE`` values, so a large table's start costs no more)."""
    sample = values.sample(min(len(values), SAMPLE), random_state=0)
    filled = nonempty_strings(sample)
    if filled.empty:
        return 0.0
    cells = len(values) * len(filled) / len(sample)
    if kind == "image":
        return IMAGE_SECONDS * cells
    chars = filled.str.len().clip(upper=CHARS_PER_TOKEN * settings.get("max_length", 128)).mean()
    return cells * (TEXT_SECONDS + TEXT_SECONDS_PER_CHAR * chars)


def frozen_inputs(plan: dict[str, InputPlan]) -> list[str]:
    """The inputs a frozen backbone reads (text and images: the kinds with a fast encoder to give way to)."""
    return [name for name, p in plan.items()
            if p.kind in ("text", "image") and issubclass(PROCESSORS.get(p.processor), FrozenFeatureProcessor)]


def frozen_seconds(plan: dict[str, InputPlan], frames: list[pd.DataFrame], threads: int,
                   cached: dict[str, float] | None = None) -> dict[str, float]:
    """Input name -> the estimated seconds of its frozen features for the rows of ``frames`` (train, valid), less
    the ``cached`` share of them (input name -> the share the feature cache holds)."""
    return {name: at_threads(sum(value_seconds(plan[name].kind, f[c], plan[name].processor_settings)
                                 for f in frames for c in plan[name].columns), threads)
            * (1 - (cached or {}).get(name, 0.0)) for name in frozen_inputs(plan)}


def cached_shares(plan: dict[str, InputPlan], columns: list[ColumnInfo], frame: pd.DataFrame, root: Path,
                  cache_dir: str | Path | None) -> dict[str, float]:
    """Input name -> the share of a sample of ``frame``'s values whose frozen features the cache already holds."""
    by_name, shares = {c.name: c for c in columns}, {}
    for name in frozen_inputs(plan):
        p = plan[name]
        processor = PROCESSORS.get(p.processor).for_input([by_name[c] for c in p.columns], p.processor_settings)
        processor.use_cache(None if cache_dir is None else str(cache_dir))
        shares[name] = processor.cached_share(processor.input_values(frame), root)
    return shares


def within_budget(plan: dict[str, InputPlan], config: ModelConfig, splits: FitSplits, budget: TimeBudget,
                  threads: int, fixed: set[str], columns: list[ColumnInfo],
                  cache_dir: str | Path | None) -> tuple[ModelConfig, str | None]:
    """``within_time`` for a fit's budget and splits, the features the cache holds left out (no limit given: the
    config as it was)."""
    if not budget.given:
        return config, None
    cached = cached_shares(plan, columns, splits.train, splits.train_root, cache_dir)
    return within_time(plan, config, [splits.train, splits.valid], budget.seconds, threads, fixed, cached)


def within_time(plan: dict[str, InputPlan], config: ModelConfig, frames: list[pd.DataFrame], time_limit: float,
                threads: int, fixed: set[str], cached: dict[str, float] | None = None) -> tuple[ModelConfig, str | None]:
    """The config with fast encoders for the frozen inputs when all frozen features (less the ``cached`` share)
    would take more than ``FROZEN_SHARE`` of ``time_limit`` (the inputs whose column or kind the user's own encoder
    choice names in ``fixed`` keep theirs), and the line that says so (None: the config as it was)."""
    costs = frozen_seconds(plan, frames, threads, cached)
    total = sum(costs.values())
    swapped = {name: fast for name in costs if name not in fixed and plan[name].kind not in fixed
               and (fast := fast_encoder(plan[name], config))}
    if total <= FROZEN_SHARE * time_limit or not swapped:
        return config, None
    line = (f"time limit {time_limit:g} s: the frozen features of {', '.join(map(repr, costs))} would take "
            f"~{total:.0f} s (over {FROZEN_SHARE:.0%} of it): "
            + "; ".join(f"{name!r} reads {enc.name}" for name, enc in swapped.items()) + " instead")
    return config.model_copy(update={"column_encoders": {**config.column_encoders, **swapped}}, deep=True), line

"""Value before cost for frozen text backbones. On a table of ``portfolio.probe_rows`` labelled rows or more
(default 8,000), a text input's frozen features (MiniLM over every row: about half of a 17k-row fit) are first
computed on a seeded sample (``SAMPLE_TRAIN`` training and ``SAMPLE_VALID`` validation rows; cached, so the full pass
reads them back) and kept only when they add, on the sample's validation rows, to the cheap members without them:
greedy selection over the n-gram linear model and the embedding linear model with the input's features, against the
same without them (``portfolio.probe.adds``: the error down by 1% of it, or the log loss down 1% at an equal error;
the inputs in turn, the costliest first, each weighed without those already left out).
An input whose features add nothing reads its n-grams alone (its fast encoder, as under a short time limit), and
the log says so::

    input 'description': minilm features probed on 1,500 + 500 rows: probe +0.0000 valid accuracy, log loss -0.1%
    in 9 s: skipped, it reads its n-grams alone

A sample favours pretrained features (they need fewer rows than n-grams to pay), so the probe errs towards keeping
them. Images are not probed: their fast encoder is a network trained from scratch, which a linear model cannot stand
in for, and ImageNet features were worth +0.1 to +0.3 accuracy on every colour-image table measured.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..config import ModelConfig
from ..core.columns import ColumnInfo
from ..data.dataset import EncodedSplit
from ..pipeline import InputPipeline, InputPlan
from ..portfolio.flat import FlatInputs
from ..portfolio.linear import EmbeddingLinear, NgramLinear
from ..portfolio.budget import TimeBudget
from ..portfolio.member import FitData
from ..portfolio.probe import Verdict, adds
from ..tasks.base import Task
from .splits import FitSplits
from .time_plan import fast_encoder, frozen_inputs, frozen_seconds, within_budget

SAMPLE_TRAIN, SAMPLE_VALID = 1_500, 500

Targets = Callable[[pd.DataFrame, EncodedSplit], Tensor]


def probed_text_inputs(plan: dict[str, InputPlan], rows: int, least_rows: int, fixed: set[str]) -> list[str]:
    """The text inputs a probe weighs: frozen, not named by the user's own encoder choice (``fixed``: columns and
    kinds), on a table of at least ``least_rows`` labelled rows (0: none)."""
    if not least_rows or rows < least_rows:
        return []
    return [n for n in frozen_inputs(plan) if plan[n].kind == "text" and not {n, plan[n].kind} & fixed]


def cheaper_plan(estimator: Any, splits: FitSplits, budget: TimeBudget,
                 replan: Callable[[], dict[str, InputPlan]]) -> dict[str, InputPlan]:
    """The estimator's input plan (``replan``: planned under its current config) after the time plan
    (``time_plan.within_budget``) and the probe: the config takes each step's fast encoders, and the log says why."""
    plan = replan()
    threads, fixed = estimator.config_.train.threads or torch.get_num_threads(), set(estimator.encoders or {})
    config, line = within_budget(plan, estimator.config_, splits, budget, threads, fixed, estimator.columns_,
                                 estimator.cache_dir)
    if line is not None:
        estimator._log(line, logging.WARNING)
        estimator.config_ = config
        plan = replan()
    config, lines = probe_backbones(estimator, plan, splits, fixed, threads)
    for line in lines:
        estimator._log(line)
    if config is estimator.config_:
        return plan
    estimator.config_ = config
    return replan()


def probe_backbones(estimator: Any, plan: dict[str, InputPlan], splits: FitSplits,
                    fixed: set[str], threads: int) -> tuple[ModelConfig, list[str]]:
    """The estimator's config with fast encoders for the probed text inputs whose frozen features add nothing on
    the sample, and one log line per probed input."""
    config = estimator.config_
    names = probed_text_inputs(plan, len(splits.train) + len(splits.valid), config.portfolio.probe_rows, fixed)
    if not names or len(config.portfolio.members) < 2:
        return config, []
    start, seed = time.perf_counter(), config.train.seed
    frames = tuple(f.sample(min(len(f), n), random_state=seed)
                   for f, n in ((splits.train, SAMPLE_TRAIN), (splits.valid, SAMPLE_VALID)))
    data = _sample_data(plan, estimator.columns_, frames, (splits.train_root, splits.valid_root), estimator.targets,
                        estimator.cache_dir)
    costs = frozen_seconds(plan, [splits.train, splits.valid], threads)
    verdicts = _verdicts(data, estimator.task_, seed, threads, sorted(names, key=lambda n: -costs[n]))
    seconds = time.perf_counter() - start
    swapped = {name: fast_encoder(plan[name], config) for name, verdict in verdicts.items() if not verdict.kept}
    outcome = {True: "kept", False: "skipped, it reads its n-grams alone"}
    lines = [f"input {name!r}: {plan[name].encoder} features probed on {len(frames[0]):,} + {len(frames[1]):,} rows: "
             f"{verdict.describe()} in {seconds:.0f} s: {outcome[verdict.kept]}" for name, verdict in verdicts.items()]
    if swapped:
        config = config.model_copy(update={"column_encoders": {**config.column_encoders, **swapped}}, deep=True)
    return config, lines


def _sample_data(plan: dict[str, InputPlan], columns: list[ColumnInfo], frames: tuple[pd.DataFrame, pd.DataFrame],
                 roots: tuple[Path, Path], targets: Targets, cache_dir: str | Path | None) -> FitData:
    """The sampled rows as members read them: a pipeline fitted on the sampled training rows (unreadable values
    masked: the full pass reports them)."""
    pipeline = InputPipeline.plan(plan, columns, cache_dir).fit(frames[0], roots[0])
    sets = []
    for frame, root, split in zip(frames, roots, ("train", "valid")):
        encoded = pipeline.transform(frame, root, "mask", split)
        sets.append(pipeline.dataset(encoded, targets(frame, encoded)))
    return FitData(*sets, pipeline.dataset, pipeline.processors)


def _verdicts(data: FitData, task: Task, seed: int, threads: int, names: list[str]) -> dict[str, Verdict]:
    """Each probed input's verdict, in turn (``names``: the costliest first): the cheap members with the frozen
    features still kept, against the same without that input's. An input left out stays out while the next is
    weighed, so two texts that say the same (a summary and its description) are not both left out for each other."""
    base = _outputs(NgramLinear(seed=seed, threads=threads), data.train, data.valid, data, task)
    rows, verdicts = (data.train, data.valid), {}
    kept = base | _outputs(EmbeddingLinear(seed=seed, threads=threads), *rows, data, task)
    for name in names:
        without = tuple(_without_embedding(flat, name) for flat in rows)
        outputs = base | _outputs(EmbeddingLinear(seed=seed, threads=threads), *without, data, task)
        verdicts[name] = adds(outputs, kept, data.valid_target, task, weight=data.valid_weights())
        if not verdicts[name].kept:
            rows, kept = without, outputs
    return verdicts


def _outputs(learner: NgramLinear | EmbeddingLinear, train: FlatInputs, valid: FlatInputs, data: FitData,
             task: Task) -> dict[str, np.ndarray]:
    """{member name -> its validation outputs (N_valid, K)} once fitted on ``train``; {} when it has nothing to read."""
    if learner.missing_views(train) is not None:
        return {}
    learner.learn(train, data.target, task, valid, data.valid_target)
    return {learner.name: task.outputs(torch.from_numpy(learner.logits(valid)).float())}


def _without_embedding(flat: FlatInputs, name: str) -> FlatInputs:
    views = {n: replace(v, embedding=None) if n == name else v for n, v in flat.views.items()}
    return FlatInputs(views, flat.present)

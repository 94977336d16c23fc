"""``lightgbm``: gradient-boosted trees over the tabular columns, compressed frozen embeddings and, per text input,
the out-of-fold logits of a linear model on its n-grams (``NgramLinear.stack``: the way text reaches a tree model
best, a sparse linear model's scores, not an SVD of TF-IDF).

Features per input: its numbers and statistics as they are, its categories as LightGBM categories, each frozen
embedding projected on its first ``components`` principal axes (fitted on the training rows), each text's token
count; a row where the input is missing, and an absent input, are LightGBM's missing values. Rounds stop early on the
validation loss. Models are saved as LightGBM's own text (``Booster.model_to_string``), one booster per label for
multilabel, and checked field by field before LightGBM reads them back (``lightgbm_text``).
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import BundleError
from ..registry import MEMBERS
from ..tasks.base import Task
from .flat import FlatInputs
from .budget import past
from .learner import Learner
from .member import Stacked
from .rates import LIGHTGBM
from .lightgbm_text import checked_model_text
from .tree_arrays import TreeArrays


# a task's output kind -> LightGBM's objective (each of "sigmoids"' labels gets its own binary booster)
OBJECTIVES = {"logit": "binary", "sigmoids": "binary", "softmax": "multiclass", "value": "regression"}


@MEMBERS.register("lightgbm", cost=3)
class LightGBMLearner(Learner):
    name = "lightgbm"
    reads = ("ngram_linear",)
    extra_trees: ClassVar[bool] = False  # random split thresholds (the extra-trees member)

    def __init__(self, seed: int = 0, threads: int = 1, learning_rate: float = 0.05, num_leaves: int = 31,
                 max_rounds: int = 1000, patience: int = 50, components: int = 32, min_data_in_leaf: int = 20,
                 rounds: list[int] | None = None):
        """``rounds``: per booster, the rounds to train with no validation rows (a refit: those early stopping
        kept); None: up to ``max_rounds``, stopped early on validation."""
        super().__init__(seed, threads)
        self.learning_rate, self.num_leaves, self.max_rounds = learning_rate, num_leaves, max_rounds
        self.patience, self.components, self.min_data_in_leaf = patience, components, min_data_in_leaf
        self.rounds = rounds
        self._boosters: list[Any] = []

    def missing_views(self, flat: FlatInputs) -> str | None:
        if not any(v.dense is not None or v.categories is not None or v.embedding is not None
                   for v in flat.views.values()):
            return "no numbers, categories or embeddings"
        return None

    def estimate_seconds(self, flat: FlatInputs, task: Task) -> float:
        width = sum((0 if v.dense is None else v.dense.shape[1]) + (0 if v.categories is None else v.categories.shape[1])
                    + (0 if v.embedding is None else self.components) for v in flat.views.values())
        trees = min(self.max_rounds, 300) * (1 if task.output_kind in ("logit", "value") else task.out_dim)
        return LIGHTGBM * len(flat) * max(width, 8) * trees + 0.5

    # --- features ----------------------------------------------------------------------------------------------
    def _fit_features(self, flat: FlatInputs) -> None:
        columns = []
        for name in sorted(flat.views):
            v = flat.views[name]
            if v.dense is not None:
                columns += [[name, "dense", v.dense.shape[1]]]
            if v.categories is not None:
                columns += [[name, "categories", v.categories.shape[1]]]
            if v.ids is not None:
                columns += [[name, "length", 1]]
            if v.embedding is not None:
                rows = v.embedding[flat.present[name]][:10_000].double()
                k = min(self.components, rows.shape[1], max(len(rows) - 1, 1))
                mean = rows.mean(0) if len(rows) else torch.zeros(rows.shape[1], dtype=torch.float64)
                _, _, vh = torch.linalg.svd(rows - mean, full_matrices=False)
                self.arrays[f"pca_mean.{name}"] = mean.float().numpy()
                self.arrays[f"pca.{name}"] = vh[:k].float().numpy()
                columns += [[name, "embedding", k]]
        self.fitted["columns"] = columns

    def _matrix(self, flat: FlatInputs, absent: frozenset[str], stacked: list[Tensor]) -> Tensor:
        """(N, F) float64 features as tensor operations (the exported graph records this same code): each input's
        columns, NaN where the row misses the input (every row for an ``absent`` one), then the stacked features."""
        parts = []
        for name, part, width in self.fitted["columns"]:
            v = flat.views[name]
            if part == "embedding":
                mean, axes = (torch.from_numpy(self.arrays[f"pca{k}.{name}"]).double() for k in ("_mean", ""))
                values = (v.embedding.double() - mean) @ axes.T
            elif part == "length":
                values = (v.ids > 0).sum(1, keepdim=True).double()
            else:
                values = getattr(v, part).double()
            missing = ~flat.present[name] if name not in absent else torch.ones(len(values), dtype=torch.bool)
            parts.append(torch.where(missing[:, None], torch.full_like(values, float("nan")), values))
        return torch.cat(parts + [torch.as_tensor(s).double() for s in stacked], dim=1)

    def _categorical(self) -> list[int]:
        out, start = [], 0
        for _, part, width in self.fitted["columns"]:
            if part == "categories":
                out += list(range(start, start + width))
            start += width
        return out

    # --- fit and predict ---------------------------------------------------------------------------------------
    def _params(self, task: Task) -> dict[str, Any]:
        classes = {"num_class": task.out_dim} if task.output_kind == "softmax" else {}
        return {"objective": OBJECTIVES[task.output_kind], **classes, "learning_rate": self.learning_rate,
                "num_leaves": self.num_leaves, "min_data_in_leaf": self.min_data_in_leaf, "feature_fraction": 0.8, "lambda_l2": 1.0,
                "num_threads": self.threads, "seed": self.seed, "deterministic": True, "force_row_wise": True,
                "verbosity": -1, "max_cat_to_onehot": 8, "extra_trees": self.extra_trees}

    def learn(self, train: FlatInputs, target: Tensor, task: Task, valid: FlatInputs | None = None,
              valid_target: Tensor | None = None, upstream: dict[str, Stacked] | None = None,
              deadline: float | None = None) -> "LightGBMLearner":
        import lightgbm

        self._fit_features(train)
        self.fitted["reads"] = sorted(upstream or {})
        x = self._matrix(train, frozenset(), [upstream[n].train for n in self.fitted["reads"]]).numpy()
        params, categorical = self._params(task), self._categorical()
        if valid is not None:
            x_valid = self._matrix(valid, frozenset(), [upstream[n].valid for n in self.fitted["reads"]]).numpy()
            checks = _labels(valid_target, task)
        models, rounds = [], []
        for k, y_train in enumerate(_labels(target, task)):
            data = lightgbm.Dataset(x, y_train, weight=train.weights(), categorical_feature=categorical,
                                    free_raw_data=False)
            if valid is None:  # a refit: the rounds early stopping kept
                booster = lightgbm.train(params, data, max(1, self.rounds[k]), callbacks=[stop_at(deadline)])
                models.append(booster.model_to_string())
                rounds.append(booster.current_iteration())
                continue
            check = lightgbm.Dataset(x_valid, checks[k], weight=valid.weights(), reference=data,
                                     categorical_feature=categorical)
            feval = None if task.own_metric or task.independent_outputs else metric_eval(task, valid_target,
                                                                                          valid.weights())
            booster = lightgbm.train({**params, "metric": "None"} if feval else params, data, self.max_rounds,
                                     valid_sets=[check], feval=feval,
                                     callbacks=[lightgbm.early_stopping(self.patience, verbose=False),
                                                stop_at(deadline)])
            models.append(booster.model_to_string(num_iteration=booster.best_iteration))
            rounds.append(booster.best_iteration)
        self.fitted["models"], self.fitted["rounds"], self.fitted["features"] = models, rounds, x.shape[1]
        self._boosters = [lightgbm.Booster(model_str=text) for text in models]  # its own text: nothing to check
        return self

    def refit_settings(self) -> dict[str, Any]:
        return {**self.get_params(), "rounds": list(self.fitted["rounds"])}

    def _setup(self) -> None:
        """A loaded member's boosters from their text, checked and regenerated first (``checked_model_text``): a
        saved model is data, and LightGBM's parser trusts its input."""
        import lightgbm

        texts = [checked_model_text(text, self.fitted.get("features")) for text in self.fitted["models"]]
        self._boosters = [lightgbm.Booster(model_str=text) for text in texts]

    def module(self) -> nn.Module:
        return _TreesGraph(self)

    def logits(self, flat: FlatInputs, absent: frozenset[str] = frozenset(),
               upstream: dict[str, np.ndarray] | None = None) -> np.ndarray:
        x = self._matrix(flat, absent, [upstream[n] for n in self.fitted["reads"]]).numpy()
        if x.shape[1] != self._boosters[0].num_feature():
            raise BundleError(f"portfolio member {self.name} reads {self._boosters[0].num_feature()} features where "
                              f"the model's inputs give {x.shape[1]} (its saved state was edited?)")
        raw = [np.asarray(b.predict(x, raw_score=True, num_threads=self.threads)) for b in self._boosters]
        out = np.stack(raw, axis=1) if len(raw) > 1 else raw[0]
        return (out if out.ndim == 2 else out[:, None]).astype(np.float32)


@MEMBERS.register("lightgbm_xt", cost=3)
class LightGBMExtraTrees(LightGBMLearner):
    """Extremely randomised trees (each split's threshold drawn at random) on the same features: another view of the
    table for the ensemble (AutoGluon's LightGBMXT)."""

    name = "lightgbm_xt"
    extra_trees = True


def _labels(target: Tensor, task: Task) -> list[np.ndarray]:
    """The targets each booster learns: one per label (multilabel), else all of them."""
    y = target.numpy()
    return [np.ascontiguousarray(y[:, k]) for k in range(y.shape[1])] if task.independent_outputs else [y]


def metric_eval(task: Task, target: Tensor, weight: np.ndarray | None,
                ) -> Callable[[np.ndarray, Any], tuple[str, float, bool]]:
    """LightGBM's ``feval`` for a user's ``eval_metric`` on the validation rows (their ``target`` and ``weight``): the
    boosters' predictions (probabilities of its built-in objectives, or standardised values) as the task's outputs,
    scored. Multilabel's boosters, one per label, keep their own loss: a metric over all labels does not score one."""
    def feval(preds: np.ndarray, _data: Any) -> tuple[str, float, bool]:
        p = np.clip(preds.astype(np.float64), 1e-12, 1 - 1e-12)
        logits = {"logit": lambda: np.log(p / (1 - p)), "softmax": lambda: np.log(p),
                  "value": lambda: preds.astype(np.float64)}[task.output_kind]().reshape(len(target), -1)
        outputs = task.outputs(torch.from_numpy(logits).float())
        return task.primary_metric, task.score(target, outputs, weight), task.maximize

    return feval


def stop_at(deadline: float | None) -> Callable[[Any], None]:
    """A LightGBM callback that ends training after the round that passes ``deadline`` (None: never), keeping the
    round with the best validation score so far, as early stopping would (with no validation rows: every round)."""
    best: list = [None, 0, None]  # score, iteration, evaluation results

    def callback(env: Any) -> None:
        if not env.evaluation_result_list:
            best[1:] = env.iteration, []
        else:
            _, _, score, higher_better = env.evaluation_result_list[0]
            if best[0] is None or (score > best[0] if higher_better else score < best[0]):
                best[:] = score, env.iteration, env.evaluation_result_list
        if past(deadline):
            import lightgbm

            raise lightgbm.callback.EarlyStopException(best[1], best[2])

    callback.order = 40  # after early stopping's own check (30)
    return callback


class _TreesGraph(nn.Module):
    """A fitted LightGBM member as tensor operations, for ONNX export: the same features (``_matrix``), then the
    boosters' trees walked as arrays (``TreeArrays``) in float64."""

    def __init__(self, learner: LightGBMLearner):
        super().__init__()
        self.learner = learner
        self.trees = TreeArrays.from_models([b.model_to_string() for b in learner._boosters])

    def forward(self, flat: FlatInputs, upstream: dict[str, Tensor]) -> Tensor:
        """Flat views of N rows and the stacked features of the members read -> (N, K) float32 raw scores."""
        stacked = [upstream[n] for n in self.learner.fitted["reads"]]
        return self.trees(self.learner._matrix(flat, frozenset(), stacked)).float()

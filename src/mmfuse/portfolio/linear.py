"""Linear members: the two baselines a practitioner writes first, fitted with the task's own loss.

``ngram_linear``: TF-IDF of each text's n-grams (or tokens) + one-hot categories + standardised numbers and
per-clip statistics + presence flags; ``embedding_linear``: the frozen backbone features, standardised, + the same
numbers, categories and flags. Both minimise the task's loss (softmax / sigmoid cross-entropy, squared error) plus
an L2 penalty ``1 / (2 C N) |W|^2`` with L-BFGS (scikit-learn's LogisticRegression objective), ``C`` picked on
validation: up the ``grid`` while the validation score (``path_metric``: the primary metric or the log loss)
improves (from strong penalties: regression and standardised embeddings want them; movies' rating: n-grams 1.125 ->
1.005 RMSE at C = 0.03 instead of 1), a quarter of ``max_iter`` per step (each warm-started from the previous
solution), then the rest of ``max_iter`` on the picked ``C`` alone (on debian's 100k n-grams x 25 classes: 43 s
instead of 100 s for full solves at every step, 0.766 instead of 0.768 validation accuracy). An absent input
contributes its training rows' mean.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from ..registry import MEMBERS
from ..tasks.base import Task
from .features import fit_idf, fit_scale, one_hot, scale, tfidf
from .flat import FlatInputs
from .budget import TimeBudget, past
from .learner import Learner, folds_of
from .member import FitData, Stacked
from .rates import LINEAR_DENSE, LINEAR_SPARSE
from .scoring import selection_key


class LinearLearner(Learner):
    """A linear model over blocks of one view of the inputs (``view``: "ngrams" or "embeddings")."""

    view: ClassVar[str]

    grid_default: ClassVar[tuple[float, ...]]
    warm: np.ndarray | None = None  # a refit's starting solution, the first fit's [W.ravel(), b] (not saved)

    def __init__(self, seed: int = 0, threads: int = 1, C: float = 1.0, grid: tuple[float, ...] | None = None,
                 max_iter: int = 200, path_metric: str = "primary"):
        super().__init__(seed, threads)
        self.C, self.grid, self.max_iter = C, list(grid or self.grid_default), max_iter
        self.path_metric = path_metric

    def missing_views(self, flat: FlatInputs) -> str | None:
        if self.view == "ngrams" and not any(v.ids is not None or v.categories is not None or v.dense is not None
                                             for v in flat.views.values()):
            return "no text, category or number inputs"
        if self.view == "embeddings" and not any(v.embedding is not None for v in flat.views.values()):
            return "no frozen embeddings"
        return None

    def estimate_seconds(self, flat: FlatInputs, task: Task) -> float:
        """Rows x the non-zeros a row has in this member's own design x (outputs + 7.5) x L-BFGS iterations, the
        sparse n-gram part (its padding left out) and the dense part at their own rates. Two tables measured the
        rates, out-of-fold copies included: fortunes 18 s (5,778 rows x 358 n-grams x 10 classes) and movies' rating
        30 s (one output: the per-non-zero work that does not grow with the outputs is 7.5 outputs' worth); the
        embeddings 0.7 s, the dense rate 4x that: an estimate 20x too high skips a member a limit has room for."""
        sparse = dense = 0.0
        for v in flat.views.values():
            if self.view == "ngrams" and v.ids is not None:
                sparse += float((v.ids != 0).sum()) / max(len(flat), 1)
            if self.view == "embeddings" and v.embedding is not None:
                dense += v.embedding.shape[1]
            sparse += 0 if v.categories is None else v.categories.shape[1]  # one-hot: one non-zero a column
            dense += (0 if v.dense is None else v.dense.shape[1]) + 1
        iterations = self.max_iter * (min(len(self.grid), 5) + 3) / 4  # ~5 quarter solves on the path + the rest
        return len(flat) * (task.out_dim + 7.5) * iterations * (LINEAR_SPARSE * sparse + LINEAR_DENSE * dense) + 0.5

    # --- the design --------------------------------------------------------------------------------------------
    def _fit_design(self, flat: FlatInputs) -> None:
        """Learn each block's transform (IDF weights, scaling) from the training rows (each counted as its weight)."""
        blocks, weight = [], flat.weights()
        for name in sorted(flat.views):
            v = flat.views[name]
            if self.view == "ngrams" and v.ids is not None:
                self.arrays[f"idf.{name}"] = fit_idf(v.ids, v.vocab, weight)
                blocks.append([name, "ids"])
            if self.view == "embeddings" and v.embedding is not None:
                self.arrays[f"mean.{name}.embedding"], self.arrays[f"std.{name}.embedding"] = fit_scale(v.embedding,
                                                                                                      weight)
                blocks.append([name, "embedding"])
            if v.dense is not None:
                self.arrays[f"mean.{name}.dense"], self.arrays[f"std.{name}.dense"] = fit_scale(v.dense, weight)
                blocks.append([name, "dense"])
            if v.categories is not None:
                self.fitted[f"cardinalities.{name}"] = list(v.cardinalities)
                blocks.append([name, "categories"])
            blocks.append([name, "present"])
        self.fitted["blocks"] = blocks

    def _block(self, flat: FlatInputs, name: str, part: str) -> Any:
        v = flat.views[name]
        if part == "ids":
            return tfidf(v.ids, self.arrays[f"idf.{name}"])
        if part == "categories":
            return one_hot(v.categories, tuple(self.fitted[f"cardinalities.{name}"]))
        if part == "present":
            return flat.present[name].float().numpy()[:, None]
        return scale(getattr(v, part), self.arrays[f"mean.{name}.{part}"], self.arrays[f"std.{name}.{part}"])

    def _design(self, flat: FlatInputs) -> list[Any]:
        return [self._block(flat, name, part) for name, part in self.fitted["blocks"]]

    # --- fit and predict ---------------------------------------------------------------------------------------
    def learn(self, train: FlatInputs, target: Tensor, task: Task, valid: FlatInputs | None = None,
              valid_target: Tensor | None = None, upstream: dict | None = None,
              deadline: float | None = None) -> "LinearLearner":
        self._fit_design(train)
        blocks = self._design(train)
        x = _stacked(blocks)
        self.fitted["widths"] = [b.shape[1] for b in blocks]
        weight = train.weights()
        means = x.mean(0) if weight is None else (sp.csr_matrix(weight[None, :] / weight.sum()) @ x).toarray()
        self.arrays["block_means"] = np.asarray(means, dtype=np.float32).ravel()
        if valid is None:  # a refit: from the first fit's solution when the design has its width
            start = self.warm if self.warm is not None and len(self.warm) == (x.shape[1] + 1) * task.out_dim else None
            self.fitted["C"] = self.C
            self._store(_solve(x, target, task, self.C, start, self.max_iter, deadline, train.weight), x.shape[1],
                        task.out_dim)
            return self
        x_valid = _stacked(self._design(valid))
        best, w, path_iter = None, None, max(1, self.max_iter // 4)
        for c in sorted(self.grid):  # the path: a quarter of the iterations per C, each from the previous solution
            if best is not None and past(deadline):
                break  # out of time: the best C so far, as solved on the path
            w = _solve(x, target, task, c, w, path_iter, deadline, train.weight)
            self._store(w, x.shape[1], task.out_dim)
            logits = _linear(x_valid, self.arrays["coef"], self.arrays["intercept"])
            key = selection_key(task, valid_target, task.outputs(torch.from_numpy(logits)), valid.weights())
            key = key[::-1] if self.path_metric == "log_loss" else key
            if best is not None and key <= best[0]:
                break  # past the best C: weaker penalties only fit the training rows closer
            best = (key, c, w)
        self.fitted["C"] = best[1]  # then the picked C alone gets the rest of the iterations
        rest = max(1, self.max_iter - path_iter)
        self._store(best[2] if past(deadline) else _solve(x, target, task, best[1], best[2], rest, deadline,
                                                           train.weight),
                    x.shape[1], task.out_dim)
        return self

    def fold_copy(self) -> "LinearLearner":
        """An unfitted copy with the picked C, solved from zero for a quarter of ``max_iter`` (out-of-fold logits
        need not be converged as far)."""
        return type(self)(**{**self.refit_settings(), "max_iter": max(30, self.max_iter // 4)})

    def out_of_fold(self, train: FlatInputs, target: Tensor, task: Task) -> np.ndarray:
        """As a fold copy would (the picked C, from zero, a quarter of ``max_iter``), but on this fit's design of
        the training rows, built once: its transforms (IDF, scaling) read no label, so a fold's rows shaping them
        leaks nothing (the n-gram member: reviews-generated 7.0 s -> 5.5 s, fortunes 13.6 s -> 11.2 s)."""
        x = _stacked(self._design(train))
        (d, k), out = (x.shape[1], task.out_dim), np.zeros((len(train), task.out_dim), dtype=np.float32)
        for part, rest in folds_of(len(train), self.seed):
            weight = None if train.weight is None else train.weight[rest]
            w = _solve(x[rest.numpy()], target[rest], task, self.fitted["C"], None, max(30, self.max_iter // 4),
                       weight=weight)
            out[part.numpy()] = _linear(x[part.numpy()], w[: d * k].reshape(d, k), w[d * k:])
        return out

    def _store(self, w: np.ndarray, d: int, k: int) -> None:
        self.arrays["coef"] = w[: d * k].reshape(d, k).astype(np.float32)
        self.arrays["intercept"] = w[d * k:].astype(np.float32)

    def refit_settings(self) -> dict[str, Any]:
        return {**self.get_params(), "C": self.fitted["C"], "grid": [self.fitted["C"]]}

    def refit(self, data: FitData, task: Task, budget: TimeBudget, upstream: dict[str, Stacked]) -> "LinearLearner":
        return self._warm_copy().learn(data.every, data.every_target, task, deadline=budget.deadline())

    def _warm_copy(self) -> "LinearLearner":
        """An unfitted copy with the picked settings that starts from this fit's solution."""
        copy = type(self)(**self.refit_settings())
        copy.warm = np.concatenate([self.arrays["coef"].ravel(), self.arrays["intercept"]]).astype(np.float64)
        return copy

    def module(self) -> nn.Module:
        return LinearGraph(self)

    def logits(self, flat: FlatInputs, absent: frozenset[str] = frozenset(),
               upstream: dict[str, np.ndarray] | None = None) -> np.ndarray:
        coef = self.arrays["coef"].astype(np.float64)
        out, start = np.tile(self.arrays["intercept"].astype(np.float64), (len(flat), 1)), 0
        for (name, part), width in zip(self.fitted["blocks"], self.fitted["widths"]):
            w = coef[start:start + width]
            if name in absent:  # the training mean of the block
                out += self.arrays["block_means"][start:start + width].astype(np.float64) @ w
            else:
                out += np.asarray(self._block(flat, name, part) @ w)
            start += width
        return out.astype(np.float32)  # float64 sums: what the exported graph computes too


class LinearGraph(nn.Module):
    """A fitted linear member's ``logits`` as dense tensor operations in float64, for ONNX export: each block as
    ``_design`` builds it (TF-IDF from an id bag made by scatter-add, one-hot categories as gathered weight rows,
    standardised numbers, presence), times its rows of the weights."""

    def __init__(self, learner: LinearLearner):
        super().__init__()
        self.blocks = [tuple(b) for b in learner.fitted["blocks"]]
        coef, start = torch.from_numpy(learner.arrays["coef"]).double(), 0
        self.register_buffer("intercept", torch.from_numpy(learner.arrays["intercept"]).double())
        for i, ((name, part), width) in enumerate(zip(self.blocks, learner.fitted["widths"])):
            self.register_buffer(f"w{i}", coef[start:start + width])
            start += width
            if part == "ids":
                idf = torch.from_numpy(learner.arrays[f"idf.{name}"]).double().clone()
                idf[0] = 0.0  # id 0 is padding: its count column is dropped
                self.register_buffer(f"idf{i}", idf)
            elif part == "categories":
                cards = torch.tensor(learner.fitted[f"cardinalities.{name}"], dtype=torch.long)
                self.register_buffer(f"last{i}", cards - 1)
                self.register_buffer(f"offset{i}", torch.cumsum(cards, 0) - cards)
            elif part in ("dense", "embedding"):
                self.register_buffer(f"mean{i}", torch.from_numpy(learner.arrays[f"mean.{name}.{part}"]).double())
                self.register_buffer(f"std{i}", torch.from_numpy(learner.arrays[f"std.{name}.{part}"]).double())

    def forward(self, flat: FlatInputs, upstream: dict[str, Tensor] | None = None) -> Tensor:
        """Flat views of N rows -> (N, K) float32 logits."""
        out = self.intercept.unsqueeze(0)  # (1, K): broadcast over the rows by the first block
        for i, (name, part) in enumerate(self.blocks):
            w = getattr(self, f"w{i}")
            if part == "ids":
                out = out + _tfidf_rows(flat.views[name].ids.long(), getattr(self, f"idf{i}")) @ w
            elif part == "categories":
                ids = torch.minimum(flat.views[name].categories.long().clamp(min=0), getattr(self, f"last{i}"))
                out = out + w[ids + getattr(self, f"offset{i}")].sum(1)
            elif part == "present":
                out = out + flat.present[name].double().unsqueeze(1) * w
            else:
                x = getattr(flat.views[name], part).double()
                out = out + ((x - getattr(self, f"mean{i}")) / getattr(self, f"std{i}")) @ w
        return out.float()


def _tfidf_rows(ids: Tensor, idf: Tensor) -> Tensor:
    """(N, L) ids -> (N, vocab) dense sublinear TF-IDF rows, L2-normalised (``features.tfidf`` in float64)."""
    keep = (ids > 0) & (ids < idf.shape[0])
    counts = torch.zeros_like(ids[:, :1], dtype=torch.float64) + torch.zeros_like(idf)  # (N, vocab), N dynamic
    counts = counts.scatter_add(1, torch.where(keep, ids, torch.zeros_like(ids)), keep.double())
    tf = torch.where(counts > 0, 1 + torch.log(counts.clamp(min=1)), torch.zeros_like(counts)) * idf
    return tf / torch.sqrt((tf * tf).sum(1, keepdim=True)).clamp(min=1e-12)


def _stacked(blocks: list[Any]) -> sp.csr_matrix:
    """Design blocks (sparse or dense, N rows each) side by side as one float32 CSR matrix."""
    return sp.hstack([sp.csr_matrix(b) for b in blocks], format="csr", dtype=np.float32)


def _linear(x: Any, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    return np.asarray(x @ coef) + intercept


def _torch_csr(x: sp.csr_matrix) -> Tensor:
    return torch.sparse_csr_tensor(torch.from_numpy(x.indptr.astype(np.int64)),
                                   torch.from_numpy(x.indices.astype(np.int64)), torch.from_numpy(x.data), size=x.shape)


def _operators(x: sp.csr_matrix) -> tuple[Tensor, Tensor]:
    """The design and its transpose as float32 torch operators: sparse CSR, or dense where most entries are set."""
    n, d = x.shape
    if x.nnz > 0.25 * n * d:
        xs = torch.from_numpy(x.toarray())
        return xs, xs.T
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's "sparse CSR support is in beta"
        return _torch_csr(x), _torch_csr(x.T.tocsr())


def _solve(x: sp.csr_matrix, target: Tensor, task: Task, c: float, start: np.ndarray | None,
           max_iter: int, deadline: float | None = None, weight: Tensor | None = None) -> np.ndarray:
    """Minimise mean task loss + |W|^2 / (2 C M) over (W (D, K), b (K,)) with L-BFGS (M: the loss terms averaged,
    rows x labels for multilabel; with row ``weight`` (N,), the weighted mean and the weights' sum in place of the
    rows: a row of weight 2 is that row twice), stopping where scikit-learn's ``tol=1e-4`` would on its
    ``C * sum + |W|^2 / 2`` objective; float32 products on torch's threads (sparse, or dense where most entries are set: movies 28 s -> 7 s),
    or scikit-learn's solver for one logit (``_binary``). Past ``deadline`` it stops at the next evaluation with the
    best solution it evaluated. Returns [W.ravel(), b] (float64)."""
    if task.output_kind == "logit" and 0 < float(target.float().mean()) < 1:
        return _binary(x, target, c, start, max_iter, weight)
    (n, d), k = x.shape, task.out_dim
    terms = (n if weight is None else float(weight.sum())) * (k if task.independent_outputs else 1)
    penalty, (xs, xt) = 1.0 / (c * terms), _operators(x)
    w0 = torch.zeros(d * k + k) if start is None else torch.from_numpy(start).float()
    coef = w0[: d * k].reshape(d, k).clone().requires_grad_()
    bias = w0[d * k:].clone().requires_grad_()
    solver = torch.optim.LBFGS([coef, bias], lr=1, max_iter=max_iter, tolerance_grad=1e-4 / (c * terms),
                               tolerance_change=1e-10, history_size=10, line_search_fn="strong_wolfe")
    best: list = [math.inf, None]  # the lowest objective evaluated, and its solution (kept only with a deadline)

    def closure() -> Tensor:
        solver.zero_grad()
        z = (xs @ coef.detach() + bias.detach()).requires_grad_()
        loss = task.loss(z, target, weight)
        loss.backward()
        coef.grad = xt @ z.grad + penalty * coef.detach()
        bias.grad = z.grad.sum(0)
        objective = loss.detach() + 0.5 * penalty * (coef.detach() ** 2).sum()
        if deadline is not None:
            if objective.item() < best[0]:
                best[:] = objective.item(), torch.cat([coef.detach().reshape(-1), bias.detach()])
            if past(deadline):
                raise TimeUp
        return objective

    try:
        solver.step(closure)
    except TimeUp:
        return best[1].double().numpy()
    return torch.cat([coef.detach().reshape(-1), bias.detach()]).double().numpy()


def _binary(x: sp.csr_matrix, target: Tensor, c: float, start: np.ndarray | None, max_iter: int,
            weight: Tensor | None = None) -> np.ndarray:
    """``_solve`` for one logit by scikit-learn's ``LogisticRegression`` (lbfgs, ``tol=1e-4``), warm-started from
    ``start``: the same objective, scipy's L-BFGS and a single-threaded sparse product, which converges in fewer
    evaluations than torch's here (reviews-generated's n-gram member 5.5 s -> 2.7 s; multiclass stays on torch: 2-3x
    faster than scikit-learn's multinomial solver on fortunes)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=max_iter, tol=1e-4, warm_start=start is not None)
    if start is not None:
        model.coef_, model.intercept_ = start[None, :-1], start[-1:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a path step stops at its share of the iterations
        model.fit(x, target.numpy().ravel(), sample_weight=None if weight is None else weight.double().numpy())
    return np.concatenate([model.coef_.ravel(), model.intercept_]).astype(np.float64)


class TimeUp(Exception):
    """The solver's deadline passed (raised inside its closure, caught by ``_solve``)."""



@MEMBERS.register("ngram_linear", cost=1)
class NgramLinear(LinearLearner):
    """TF-IDF n-grams + one-hot categories + standardised numbers into a linear model (the TF-IDF baseline).

    What it gives the members that read it (the trees) is not its own logits but, per text input, the logits of a
    linear model on that text alone (its own ``C`` picked on validation), side by side: a tree can then weigh the
    director apart from the cast, and the numbers it has itself are not folded into a text score (validation, trees
    reading these instead of the joint logits: movies-drama ROC-AUC 0.743 -> 0.767, fortunes accuracy 0.656 -> 0.670,
    movies-rating RMSE 0.644 -> 0.638 standardised). Without text inputs, or with one text input and nothing else
    (that text's model is this one: fortunes' member 20 s -> 15 s): its logits. A multilabel text's ``C``
    climbs the validation log loss instead of micro-F1, which at the 0.5 threshold is flat or dips at strong
    penalties (every row gets the frequent labels) and stopped each of movies' texts at the first step (LightGBM
    reading them: validation micro-F1 0.519 -> 0.547, the ensemble 0.552 -> 0.561).
    """

    name, view = "ngram_linear", "ngrams"
    grid_default = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
    _parts: dict[str, "NgramLinear"] = {}  # per text input, once ``stack`` has fitted them (read-only default)

    def refit(self, data: FitData, task: Task, budget: TimeBudget, upstream: dict[str, Stacked]) -> "NgramLinear":
        """The model, and each text's own model when the first fit stacked them, at the C picked for each and
        starting from the first fit's solution."""
        new = super().refit(data, task, budget, upstream)
        if self._parts:
            new._keep_parts({name: part._warm_copy().learn(data.every.select([name]), data.every_target, task,
                                                           deadline=budget.deadline())
                             for name, part in self._parts.items()})
        return new

    def stack(self, train: FlatInputs, target: Tensor, task: Task, valid: FlatInputs, valid_target: Tensor) -> Stacked:
        texts = [name for name in sorted(train.views) if train.views[name].ids is not None]
        climb = "log_loss" if task.independent_outputs else "primary"
        if not texts or (texts == sorted(train.views) == texts[:1] and climb == self.path_metric):
            return super().stack(train, target, task, valid, valid_target)  # no text, or the text is all it reads
        self._keep_parts({name: NgramLinear(self.seed, self.threads, max_iter=self.max_iter, path_metric=climb).learn(
            train.select([name]), target, task, valid.select([name]), valid_target) for name in texts})
        return Stacked(np.concatenate([part.out_of_fold(train.select([name]), target, task)
                                       for name, part in self._parts.items()], axis=1), self.stacked_features(valid))

    def _keep_parts(self, parts: dict[str, "NgramLinear"]) -> None:
        self.fitted["parts"] = {name: part.state()[0] for name, part in parts.items()}
        for name, part in parts.items():
            self.arrays.update({f"part.{name}/{key}": value for key, value in part.arrays.items()})
        self._parts = parts  # what ``_setup`` rebuilds from the state on loading

    def _setup(self) -> None:
        self._parts = {name: NgramLinear.from_state(meta, {k[len(f"part.{name}/"):]: v for k, v in self.arrays.items()
                                                           if k.startswith(f"part.{name}/")})
                       for name, meta in self.fitted.get("parts", {}).items()}

    def stacked_features(self, flat: FlatInputs, absent: frozenset[str] = frozenset()) -> np.ndarray:
        if not self._parts:
            return self.logits(flat, absent)
        return np.concatenate([part.logits(flat, absent) for part in self._parts.values()], axis=1)

    def stacked_module(self) -> nn.Module:
        return _PartsGraph(self._parts) if self._parts else self.module()


class _PartsGraph(nn.Module):
    """``NgramLinear.stacked_features`` as tensor operations: each text's linear model, side by side."""

    def __init__(self, parts: dict[str, NgramLinear]):
        super().__init__()
        self.parts = nn.ModuleList(LinearGraph(part) for part in parts.values())

    def forward(self, flat: FlatInputs, upstream: dict[str, Tensor] | None = None) -> Tensor:
        """Flat views of N rows -> (N, texts x K) float32 logits."""
        return torch.cat([part(flat) for part in self.parts], dim=1)


@MEMBERS.register("embedding_linear", cost=2)
class EmbeddingLinear(LinearLearner):
    """Frozen backbone features + numbers + categories into a linear model (the frozen-features baseline)."""

    name, view = "embedding_linear", "embeddings"
    grid_default = (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)  # rows ~20x TF-IDF's norm: ~400x the penalty

"""The n-gram linear member (``ngram_linear``: its fit, penalty path, per-text models and out-of-fold copies) against
scikit-learn doing the same work: the same design matrices (built by the member's own code, counted on both sides),
the same path of penalties climbed the same way (a quarter of ``max_iter`` per C, warm-started, stopped past the
best validation score, then the rest on the picked C), the same per-text models and the same seeded folds, with
``LogisticRegression`` (lbfgs, ``tol=1e-4``; one-vs-rest for multilabel) or ``Ridge`` (regression), on the same
threads.

    .venv/bin/python benchmarks/ngram_speed.py [--tables fortunes,emoji,reviews-generated] [--threads 2]

Prints a table: seconds for the member, for scikit-learn's twin, their ratio, and each side's validation score.
The tables are benchmarks/realdata.py's (``make realdata``); their flat views come from a fit of the member alone.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from realdata_tables import build  # noqa: E402


def flat_data(table: str, threads: int):
    """(FitData, task) of the table's train / valid split as the ``ngram_linear`` member receives them."""
    from mmfuse import Predictor
    from mmfuse.portfolio import fit as portfolio_fit

    spec, seen = build(table), {}
    original = portfolio_fit.PortfolioFit.run

    def run(self, data):
        seen["data"], seen["task"] = data, self.task
        return original(self, data)

    portfolio_fit.PortfolioFit.run = run
    try:
        Predictor(label=spec.label, label_sep=spec.label_sep, members=["ngram_linear"], encoders={"text": "ngrams"},
                  threads=threads, progress=False, verbose=False, refit=False,
                  ).fit(spec.folder / "train.csv", valid=spec.folder / "valid.csv")
    finally:
        portfolio_fit.PortfolioFit.run = original
    data = seen["data"]
    data.train, data.valid  # the views, before any clock starts
    return data, seen["task"]


def mmfuse_member(data, task, threads: int):
    from mmfuse.portfolio.linear import NgramLinear

    member = NgramLinear(seed=0, threads=threads)
    member.learn(data.train, data.target, task, data.valid, data.valid_target)
    member.stack(data.train, data.target, task, data.valid, data.valid_target)
    return member


def sklearn_twin(data, task, member) -> tuple[float, dict]:
    """The member's work done by scikit-learn: the joint model's path, each text's path, the out-of-fold copies."""
    from mmfuse.portfolio.linear import NgramLinear, _stacked

    picked = {}
    design = NgramLinear(seed=0)
    design._fit_design(data.train)
    x, x_valid = _stacked(design._design(data.train)), _stacked(design._design(data.valid))
    score, picked["joint"] = climb(x, data.target, x_valid, data.valid_target, task, member)
    parts = member._parts or {}
    for name in parts:
        part = NgramLinear(seed=0)
        train, valid = data.train.select([name]), data.valid.select([name])
        part._fit_design(train)
        xp, xp_valid = _stacked(part._design(train)), _stacked(part._design(valid))
        _, picked[name] = climb(xp, data.target, xp_valid, data.valid_target, task, member)
        folds(xp, data.target, task, picked[name], member)
    if not parts:
        folds(x, data.target, task, picked["joint"], member)
    return score, picked


def solver(task, c: float, max_iter: int):
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.multiclass import OneVsRestClassifier

    if task.output_kind == "value":
        return Ridge(alpha=1 / (2 * c))
    model = LogisticRegression(C=c, max_iter=max_iter, tol=1e-4, warm_start=True)
    return OneVsRestClassifier(model) if task.output_kind == "sigmoids" else model


def labels(task, target: torch.Tensor) -> np.ndarray:
    y = target.numpy()
    return y.ravel() if task.output_kind in ("logit", "softmax", "value") else y


def logits_of(model, x, task) -> np.ndarray:
    if task.output_kind == "value":
        return model.predict(x)[:, None]
    return model.decision_function(x).reshape(x.shape[0], -1)


def climb(x, target, x_valid, valid_target, task, member) -> tuple[float, float]:
    """The member's path with scikit-learn: (the picked C's validation score, the picked C)."""
    from mmfuse.portfolio.scoring import selection_key

    path_iter, best, model = max(1, member.max_iter // 4), None, None
    for c in sorted(member.grid):
        fresh = solver(task, c, path_iter)
        if model is not None and hasattr(model, "coef_"):  # warm start from the previous C's solution
            fresh.coef_, fresh.intercept_ = model.coef_, model.intercept_
        model = fresh.fit(x, labels(task, target))
        key = selection_key(task, valid_target, task.outputs(torch.from_numpy(logits_of(model, x_valid, task))))
        if best is not None and key <= best[0]:
            break
        best = (key, c, model)
    rest = solver(task, best[1], max(1, member.max_iter - path_iter))
    if hasattr(best[2], "coef_"):
        rest.coef_, rest.intercept_ = best[2].coef_, best[2].intercept_
    rest.fit(x, labels(task, target))
    return best[0][0], best[1]


def folds(x, target, task, c: float, member, k: int = 5) -> None:
    order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(member.seed))
    for part in order.tensor_split(k):
        rest = order[~torch.isin(order, part)].numpy()
        model = solver(task, c, max(30, member.max_iter // 4)).fit(x[rest], labels(task, target[rest]))
        logits_of(model, x[part.numpy()], task)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", default="fortunes,emoji,reviews-generated")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import threadpoolctl

    print("| table | rows x design columns | member s | scikit-learn s | ratio | member valid | scikit-learn valid |")
    print("|---|---|---|---|---|---|---|")
    for table in args.tables.split(","):
        data, task = flat_data(table, args.threads)
        start = time.perf_counter()
        member = mmfuse_member(data, task, args.threads)
        ours = time.perf_counter() - start
        with threadpoolctl.threadpool_limits(args.threads), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lbfgs stopped at the path's max_iter: as the member's own steps
            start = time.perf_counter()
            theirs_score, _ = sklearn_twin(data, task, member)
            theirs = time.perf_counter() - start
        from mmfuse.portfolio.linear import _linear, _stacked
        from mmfuse.portfolio.scoring import selection_key

        logits = _linear(_stacked(member._design(data.valid)), member.arrays["coef"], member.arrays["intercept"])
        ours_score = selection_key(task, data.valid_target, task.outputs(torch.from_numpy(logits)))[0]
        width = sum(member.fitted["widths"])
        print(f"| {table} | {len(data.train):,} x {width:,} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f} | "
              f"{abs(ours_score):.4f} | {abs(theirs_score):.4f} |")


if __name__ == "__main__":
    main()

"""LightGBM's trees as flat arrays walked with tensor operations, so an exported graph holds them exactly.

    trees = TreeArrays.from_models(booster_texts)            # one booster per label for multilabel
    raw = trees(x)                                           # (N, F) float64 -> (N, K) float64 raw scores

Every node of every tree is one entry of the arrays (a leaf points at itself), so ``depth`` rounds of gathers take
every row to its leaf in every tree at once. Decisions follow LightGBM's own (``Tree::NumericalDecision`` /
``CategoricalDecision``) in float64 with the thresholds as LightGBM printed them (17 significant digits: exact):
a missing value goes the node's default way where the node learned one (``missing_type`` NaN, or Zero with 0 and
NaN alike), else counts as 0; a category goes left when its integer is in the node's set, a missing or negative one
right. Leaf values are summed per output column in float64, as LightGBM does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

ZERO = 1e-35  # LightGBM's kZeroThreshold
MISSING = {"None": 0, "Zero": 1, "NaN": 2}


class TreeArrays(nn.Module):
    def __init__(self, nodes: dict[str, np.ndarray], roots: np.ndarray, columns: np.ndarray, depth: int,
                 categories: np.ndarray, out_dim: int):
        super().__init__()
        for key, values in nodes.items():
            self.register_buffer(key, torch.from_numpy(values))
        self.register_buffer("roots", torch.from_numpy(roots))
        self.register_buffer("categories", torch.from_numpy(categories.ravel()))  # (sets x width) bool, row 0 empty
        self.register_buffer("assign", torch.nn.functional.one_hot(torch.from_numpy(columns), out_dim).double())
        self.depth, self.width = depth, categories.shape[1]

    @classmethod
    def from_models(cls, models: list[str]) -> "TreeArrays":
        """From ``Booster.model_to_string`` texts: one model of K trees per round (multiclass: K columns), or one
        model per output column (multilabel; binary and regression: one model, one column)."""
        import lightgbm

        nodes: dict[str, list] = {k: [] for k in ("feature", "threshold", "left", "right", "default_left",
                                                  "missing", "category_set", "value")}
        sets: list[list[int]] = [[]]
        roots, columns, depth, out_dim = [], [], 1, len(models)
        for k, text in enumerate(models):
            dump = lightgbm.Booster(model_str=text).dump_model()
            per_round = dump["num_tree_per_iteration"]
            out_dim = max(out_dim, per_round)
            for tree in dump["tree_info"]:
                roots.append(len(nodes["value"]))
                columns.append(k if len(models) > 1 else tree["tree_index"] % per_round)
                depth = max(depth, _add(tree["tree_structure"], nodes, sets, 0))
        width = max([max(s) + 1 for s in sets if s] + [1])
        categories = np.zeros((len(sets), width), dtype=bool)
        for row, members in enumerate(sets):
            categories[row, members] = True
        arrays = {k: np.asarray(v, dtype=np.float64 if k in ("threshold", "value") else
                                (np.bool_ if k == "default_left" else np.int64)) for k, v in nodes.items()}
        return cls(arrays, np.asarray(roots, dtype=np.int64), np.asarray(columns, dtype=np.int64), depth,
                   categories, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        """(N, F) float64 features (NaN: missing) -> (N, K) float64 summed leaf values."""
        node = torch.zeros_like(x[:, :1], dtype=torch.long) + self.roots  # (N, T), N dynamic in a graph
        for _ in range(self.depth):
            value = torch.gather(x, 1, self.feature[node])
            nan = torch.isnan(value)
            missing = self.missing[node]
            value0 = torch.where(nan & (missing != 2), torch.zeros_like(value), value)
            default = ((missing == 1) & (value0.abs() <= ZERO)) | ((missing == 2) & nan)
            numeric = default & self.default_left[node] | ~default & (value0 <= self.threshold[node])
            category_set = self.category_set[node]
            inside = ~nan & (value >= 0) & (value < self.width)
            cell = category_set * self.width + torch.where(inside, value, torch.zeros_like(value)).long()
            categorical = category_set > 0  # (logical operators, not where: onnxruntime has no boolean Where)
            left = categorical & inside & self.categories[cell] | ~categorical & numeric
            node = torch.where(left, self.left[node], self.right[node])
        return self.value[node] @ self.assign


def _add(tree: dict[str, Any], nodes: dict[str, list], sets: list[list[int]], level: int) -> int:
    """Append a (sub)tree's nodes, depth first; returns its depth below ``level``. A leaf points at itself."""
    index = len(nodes["value"])
    for key in nodes:
        nodes[key].append(0)
    if "leaf_value" in tree:
        nodes["value"][index], nodes["left"][index], nodes["right"][index] = tree["leaf_value"], index, index
        return level
    nodes["feature"][index] = tree["split_feature"]
    nodes["default_left"][index] = bool(tree["default_left"])
    nodes["missing"][index] = MISSING[tree["missing_type"]]
    if tree["decision_type"] == "==":  # a set of categories, printed "1||4||7"
        nodes["category_set"][index] = len(sets)
        sets.append([int(c) for c in str(tree["threshold"]).split("||")])
    else:
        nodes["threshold"][index] = float(tree["threshold"])
    nodes["left"][index] = len(nodes["value"])
    deepest = _add(tree["left_child"], nodes, sets, level + 1)
    nodes["right"][index] = len(nodes["value"])
    return max(deepest, _add(tree["right_child"], nodes, sets, level + 1))

"""Temperature scaling of the ensemble's probabilities, fitted on validation: multiclass and binary divide the log
probabilities by one temperature (the decision never changes), multilabel each label's logit by its own; regression
is not calibrated. The expected calibration error (15 equal-width bins) is reported before and after.

Limits (documented): calibrated probabilities are kept within [``FLOOR``, 1 - ``FLOOR``] (a tiny validation split
that the members separate perfectly would otherwise push them to 1e-35); a validation split of fewer than
``MIN_ROWS`` rows is not used for calibrating (the caller says so).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from torch import Tensor

EPS = 1e-7
FLOOR = 1e-6    # the least probability a calibrated output gives a class (or a label, either way)
MIN_ROWS = 30   # validation rows needed to fit temperatures


def apply_temperature(outputs: np.ndarray, temperatures: list[float], *, per_label: bool) -> np.ndarray:
    """Outputs (N, K) with the temperatures applied (one for all classes; ``per_label``: one per label, multilabel)."""
    outputs = torch.from_numpy(np.asarray(outputs, dtype=np.float32))
    return temperature_tensor(outputs, temperatures, per_label=per_label).numpy()


def temperature_tensor(outputs: Tensor, temperatures: list[float], *, per_label: bool) -> Tensor:
    """``apply_temperature`` as tensor operations (float64 inside, float32 out), which an exported graph records."""
    p, t = outputs.double(), torch.tensor(temperatures, dtype=torch.float64)
    if per_label:
        p = p.clamp(EPS, 1 - EPS)
        return torch.sigmoid((torch.log(p) - torch.log1p(-p)) / t).clamp(FLOOR, 1 - FLOOR).float()
    p = torch.softmax(torch.log(p.clamp(EPS, 1)) / t, dim=1).clamp(min=FLOOR)
    return (p / p.sum(1, keepdim=True)).float()


def _nll(outputs: np.ndarray, target: np.ndarray, per_label: bool, weight: np.ndarray | None) -> float:
    """The log loss of (N, K) outputs, each row counted with its ``weight`` (None: 1)."""
    p = np.clip(outputs, EPS, 1 - EPS)
    if per_label:
        return float(np.average(-(target * np.log(p) + (1 - target) * np.log(1 - p)).mean(1), weights=weight))
    return float(np.average(-np.log(p[np.arange(len(target)), target]), weights=weight))


def fit_temperatures(outputs: np.ndarray, target: Tensor, *, per_label: bool,
                     weight: np.ndarray | None = None) -> list[float]:
    """The temperatures (in [0.05, 20]) that minimise the validation log loss (rows weighted by ``weight``)."""
    y = target.numpy()
    columns = range(outputs.shape[1]) if per_label else [None]
    found = []
    for k in columns:
        part, truth = (outputs, y) if k is None else (outputs[:, [k]], y[:, [k]])
        result = minimize_scalar(lambda log_t: _nll(apply_temperature(part, [np.exp(log_t)], per_label=per_label),
                                                    truth, per_label, weight),
                                 bounds=(np.log(0.05), np.log(20.0)), method="bounded")
        found.append(float(np.exp(result.x)))
    return found


def expected_calibration_error(outputs: np.ndarray, target: Tensor, *, per_label: bool, bins: int = 15) -> float:
    """ECE: binary / multiclass over the top class's confidence; multilabel over every (row, label) probability."""
    y = target.numpy()
    if per_label:
        confidence, correct = outputs.ravel(), y.ravel().astype(float)
    else:
        confidence, correct = outputs.max(1), (outputs.argmax(1) == y).astype(float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            error += inside.mean() * abs(confidence[inside].mean() - correct[inside].mean())
    return float(error)

"""A ``Predictor``'s answers as tables: predictions per row (``prediction_frame``) and the members' leaderboard
(``leaderboard_frame``)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

from ..data.table import read_table
from ..errors import DataError
from ..portfolio.prediction import ENSEMBLE
from .contributions import row_contributions

BOARD_COLUMNS = ["member", "valid", "test", "weight", "rows", "refit", "probe", "fit_seconds", "refit_seconds",
                 "predict_ms_per_row", "status"]


def prediction_frame(predictor: Any, data: Any, explain: bool, keep: list[str] | None) -> pd.DataFrame:
    """``Predictor.predict_frame``."""
    table = read_table(data, "predict")
    missing = [c for c in keep or [] if c not in table.frame.columns]
    if missing:
        raise DataError(f"predict: column {missing[0]!r} to keep is not in the table; columns are: "
                        f"{', '.join(map(str, table.frame.columns))}")
    frame, split = predictor.prepare(table, "predict")
    result = row_contributions(predictor, split, frame=frame, root=table.root) if explain else None
    out = predictor.task_.prediction_frame(result.outputs if result else predictor.predict_outputs(split))
    carried = [c.name for c in predictor.columns_ if c.modality == "ignore" and c.name in frame.columns]
    carried += [c for c in keep or [] if c not in carried]
    ids = frame.loc[split.rows, carried].reset_index(drop=True)
    names = sorted(split.present)
    present = torch.stack([split.present[n] for n in names], dim=1).tolist()  # (N, M)
    used = ["+".join(n for n, on in zip(names, row) if on) or "none" for row in present]
    parts = [pd.DataFrame({"row": split.rows}), ids, pd.DataFrame({"inputs_used": used}), out]
    if result:
        changes = {**result.removal, **result.columns}
        parts.append(pd.DataFrame({"explains": result.explains(predictor.task_.classes),
                                   **{f"contribution_{n}": v for n, v in changes.items()},
                                   **{f"shapley_{n}": v for n, v in (result.shapley or {}).items()}}))
    return pd.concat(parts, axis=1).set_axis(table.labels(split.rows), axis=0)


def leaderboard_frame(predictor: Any, test: Any = None) -> pd.DataFrame:
    """``Predictor.leaderboard``."""
    metric, portfolio, metrics = predictor.task_.primary_metric, predictor.portfolio_, predictor.metrics_
    rows = [dict(r) for r in portfolio.board]
    if portfolio.lone:  # its figures are the fit's
        rows[0] |= {"valid": metrics["valid"][metric], "fit_seconds": metrics.get("stages", {}).get("training")}
    rows.append({"member": ENSEMBLE, "status": "fitted", "valid": metrics["valid"][metric], "weight": None,
                 "fit_seconds": metrics.get("fit_seconds")})
    if test is not None:
        frame, split = predictor.prepare(test, "test", labelled=True)
        target = predictor.targets(frame, split)
        outputs = predictor._member_outputs(split, predictor.members_())
        outputs[ENSEMBLE] = predictor._ensemble(outputs)
        for row in rows:
            if row["member"] in outputs:
                row["test"] = predictor.task_.score(target, outputs[row["member"]])
    board = pd.DataFrame(rows)
    return board[[c for c in BOARD_COLUMNS if c in board.columns]].rename(
        columns={"valid": f"valid_{metric}", "test": f"test_{metric}"})

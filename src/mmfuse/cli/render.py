"""Rich tables for what the commands print: metrics, retrieval recall, contributions and corruption curves, the
sweep, a saved model's description, search results and the demo's comparison."""

from __future__ import annotations

import math
from typing import Any

from rich.table import Table


def _table(title: str, headers: list[str], left: tuple[str, ...] = ()) -> Table:
    table = Table(title=title, title_justify="left", min_width=len(title))  # the title on one line
    for header in headers:
        table.add_column(header, justify="left" if header in left else "right")
    return table


def metrics_table(title: str, metrics: dict[str, float]) -> Table:
    table = _table(title, ["metric", "value"], left=("metric",))
    for name, value in metrics.items():
        table.add_row(name, f"{value:.4f}" if isinstance(value, float) else str(value))
    return table


def leaderboard_table(title: str, board: Any) -> Table:
    """A leaderboard DataFrame (``Predictor.leaderboard``): one row per member, then the ensemble."""
    headers = [c for c in board.columns if c != "status"] + ["status"]
    table = _table(title, headers, left=("member", "status"))
    for row in board.to_dict("records"):
        table.add_row(*[_cell(row.get(h)) for h in headers])
    return table


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def retrieval_table(title: str, metrics: dict[str, float], query: str, target: str) -> Table:
    from ..tasks.retrieval import DIRECTIONS, RECALL_AT  # loaded by the retrieval model already; keeps --help light

    names = {"q2t": f"{query} -> {target}", "t2q": f"{target} -> {query}"}
    table = _table(title, ["direction", *[f"R@{k}" for k in RECALL_AT], "median rank", "MRR"], left=("direction",))
    for d in DIRECTIONS:
        table.add_row(names[d], *[f"{metrics[f'{d}_r@{k}']:.3f}" for k in RECALL_AT],
                      f"{metrics[f'{d}_median_rank']:.0f}", f"{metrics[f'{d}_mrr']:.3f}")
    return table


def robustness_tables(report: Any) -> list[Table]:
    """A ``RobustnessReport``: the score without each input (drop and Shapley), then every corruption curve."""
    contributions = _table(f"contribution of each input ({report.metric}, all inputs: {report.score:.4f})",
                           ["input", "without it", "drop", "Shapley"], left=("input",))
    for name, score in report.without.items():
        shapley = f"{report.shapley[name]:+.4f}" if report.shapley else "-"
        contributions.add_row(name, f"{score:.4f}", f"{report.score - score:+.4f}", shapley)
    curves = _table(f"{report.metric} under corruption (levels {', '.join(map(str, report.levels))})",
                    ["input", "corruption", *[str(level) for level in report.levels], "relative robustness"],
                    left=("input", "corruption"))
    relative = report.relative()
    for name, by_corruption in report.curves.items():
        for corruption, scores in by_corruption.items():
            curves.add_row(name, corruption, *[f"{s:.3f}" for s in scores], f"{relative[name][corruption]:.3f}")
    tables = [contributions, curves]
    if report.elements:
        k = max(map(len, report.elements.values()))
        kept = _table(f"{report.metric} with 1..{k} of each set's elements kept", ["input", *map(str, range(1, k + 1))],
                      left=("input",))
        for name, scores in report.elements.items():
            kept.add_row(name, *[f"{s:.3f}" for s in scores], *["-"] * (k - len(scores)))
        tables.append(kept)
    return tables


def importance_table(report: Any, shapley: dict[str, float] | None, shapley_metric: str) -> Table:
    """A ``ColumnImportance`` (most important first), with the Shapley value of the input each column feeds."""
    frame = report.frame()
    what = (f"shuffled between rows (mean ± sd over {int(frame['n'].max())} shuffles)" if report.method == "permute"
            else "removed")
    table = _table(f"importance of each column: {report.change} when it is {what}; all columns: "
                   f"{report.score:.4f}",
                   ["column", "modality", "importance", "input", f"input's Shapley ({shapley_metric})"],
                   left=("column", "modality", "input"))
    for column, row in frame.iterrows():
        spread = f" ± {row['stddev']:.4f}" if row["n"] > 1 else ""  # removing a column is one measurement
        table.add_row(str(column), row["modality"], f"{row['importance']:+.4f}{spread}", row["input"],
                      f"{shapley[row['input']]:+.4f}" if shapley else "-")
    return table


def sweep_table(summary: dict[str, dict[str, tuple[float, float]]], metric: str, seeds: str, winner: str) -> Table:
    effective = "effective" in next(iter(summary.values()))
    several = "," in seeds
    spread = f"mean ± std over seeds {seeds}" if several else f"seed {seeds}"
    table = _table(f"sweep: {metric}, {spread}; winner picked on validation",
                   ["run", f"valid {metric}", f"test {metric}", "rel. robustness",
                    *(["eff. robustness"] if effective else []), "parameters", "train time", "latency / row",
                    "peak memory"], left=("run",))
    score = (lambda m: f"{m[0]:.4f} ± {m[1]:.4f}") if several else (lambda m: f"{m[0]:.4f}")
    for name, s in summary.items():
        table.add_row(("* " if name == winner else "") + name, score(s["valid"]), score(s["test"]),
                      f"{s['relative'][0]:.3f}",
                      *([f"{s['effective'][0]:+.3f}"] if effective else []),
                      "-" if math.isnan(s["parameters"][0]) else f"{s['parameters'][0]:,.0f}",
                      f"{s['fit_seconds'][0]:.1f} s", f"{s['latency_ms'][0]:.2f} ms", f"{s['peak_mb'][0]:.0f} MB")
    return table


def inputs_table(description: dict[str, Any]) -> Table:
    table = _table("inputs", ["column", "modality", "encoder", "detected because"],
                   left=("column", "modality", "encoder", "detected because"))
    for item in description["inputs"]:
        encoder = item["encoder"] + (f" ({item['chosen_by']})" if item.get("chosen_by") else "")
        table.add_row(str(item["column"]), item["modality"], encoder, item["reason"])
    return table


def search_table(title: str, column: str, extra: list[str], rows: list[list[str]]) -> Table:
    table = _table(title, ["rank", "score", "row", column, *extra], left=(column, *extra))
    for row in rows:
        table.add_row(*row)
    return table


def demo_table(title: str, runs: dict[str, dict[str, Any]]) -> Table:
    table = _table(title, ["model", "accuracy", "macro-F1", "epochs", "train time", "parameters"], left=("model",))
    for name, r in runs.items():
        table.add_row(name, f"{r['accuracy']:.3f}", f"{r['macro_f1']:.3f}", str(r["epochs"]),
                      f"{r['fit_seconds']:.1f} s", f"{r['parameters']:,}")
    return table

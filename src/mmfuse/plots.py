"""Plots a person would rather look at than read: learning curves, a confusion matrix, bars, robustness curves and
column importance (PNG, matplotlib Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curves(history: list[dict[str, float]], path: str | Path, metric: str, best_epoch: int | None = None,
                         model_score: float | None = None, network_weight: float | None = None) -> Path:
    """The network's train/validation loss and validation ``metric`` per epoch, the epoch it kept (``best_epoch``)
    marked; in a portfolio, the whole model's validation score (``model_score``) as a line beside the network's and
    the network's ensemble weight in the title."""
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, (loss_ax, metric_ax) = plt.subplots(1, 2, figsize=(9, 3.4))
    loss_ax.plot(epochs, [h["train_loss"] for h in history], label="train")
    loss_ax.plot(epochs, [h["val_loss"] for h in history], label="validation")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="the network's loss")
    scores = [h[f"val_{metric}"] for h in history]
    metric_ax.plot(epochs, scores, color="tab:green", label="the network")
    metric_ax.set(xlabel="epoch", ylabel=metric, title=f"validation {metric}")
    if best_epoch in epochs:
        for ax in (loss_ax, metric_ax):
            ax.axvline(best_epoch, color="grey", linestyle=":", linewidth=1, label=f"kept: epoch {best_epoch}")
        metric_ax.plot([best_epoch], [scores[epochs.index(best_epoch)]], "o", color="tab:green")
    if model_score is not None:
        metric_ax.axhline(model_score, color="tab:purple", linestyle="--", label="the model (ensemble)")
    loss_ax.legend(fontsize=8)
    metric_ax.legend(fontsize=8)
    weight = "" if network_weight is None else f" (its weight in the ensemble: {network_weight:.2f})"
    fig.suptitle(f"training of the network{weight}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_confusion(y_true: np.ndarray, y_pred: np.ndarray, classes: list, path: str | Path) -> Path:
    """Row-normalised confusion matrix with counts in the cells."""
    plt = _pyplot()
    k = len(classes)
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (y_true, y_pred), 1)
    shares = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * k, 1 + 0.5 * k))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    labels = [str(c)[:18] for c in classes]
    ax.set_xticks(range(k), labels, rotation=45, ha="right")
    ax.set_yticks(range(k), labels)
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix (row share, counts)")
    for i in range(k):
        for j in range(k):
            if counts[i, j]:
                ax.text(j, i, counts[i, j], ha="center", va="center", fontsize=8,
                        color="white" if shares[i, j] > 0.5 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_bars(values: dict[str, float], path: str | Path, ylabel: str) -> Path:
    """One bar per model (e.g. unimodal vs fused), value printed on top."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(values), 3.2))
    bars = ax.bar(list(values), list(values.values()), color=["tab:gray"] * (len(values) - 1) + ["tab:blue"])
    ax.bar_label(bars, fmt="%.3f")
    ax.set(ylabel=ylabel, ylim=(0, 1.08))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_robustness(curves: dict[str, dict[str, list[float]]], levels: tuple[float, ...], metric: str,
                    path: str | Path) -> Path:
    """One panel per input: the score against corruption level, one line per corruption; the panels share their y
    axis, so a drop of 0.01 never looks like a cliff beside one of 0.3."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(curves), figsize=(3.4 * len(curves), 3.0), squeeze=False, sharey=True)
    for ax, (name, by_corruption) in zip(axes[0], curves.items()):
        for corruption, scores in by_corruption.items():
            ax.plot(levels, scores, marker="o", label=corruption)
        ax.set(title=name, xlabel="corruption level")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel(metric)  # one y axis for all panels: the same drop looks the same in each
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_importance(frame, change: str, path: str | Path) -> Path:
    """One horizontal bar per column (``ColumnImportance.frame()``), most important on top, +-1 sd whiskers, coloured
    by modality."""
    plt = _pyplot()
    frame = frame.iloc[::-1]
    colours = {m: f"C{i}" for i, m in enumerate(dict.fromkeys(frame["modality"]))}
    fig, ax = plt.subplots(figsize=(6, 0.9 + 0.32 * len(frame)))
    ax.barh([str(c) for c in frame.index], frame["importance"], xerr=frame["stddev"],
            color=[colours[m] for m in frame["modality"]], capsize=2)
    ax.axvline(0, color="black", linewidth=0.6)
    from matplotlib.patches import Patch

    ax.set(xlabel=change, title="column importance")
    ax.legend(handles=[Patch(color=c, label=m) for m, c in colours.items()], fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)

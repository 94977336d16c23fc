"""The pictures say what they show: the network's learning curves mark the kept epoch and sit beside the ensemble's
score; robustness panels share one y axis, so a small drop never looks like a cliff."""

from __future__ import annotations

import pytest

from mmfuse import plots


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plot functions close (each is drawn to a PNG first), to read their axes."""
    figures = []
    monkeypatch.setattr(plots._pyplot(), "close", figures.append)
    return figures


def test_learning_curves_mark_the_kept_epoch_and_the_ensemble(drawn, tmp_path):
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "val_accuracy": 0.6 + 0.1 * (e == 2)}
               for e in (1, 2, 3)]
    path = plots.plot_learning_curves(history, tmp_path / "curves.png", "accuracy", best_epoch=2, model_score=0.9,
                                      network_weight=0.0)
    assert path.read_bytes()[:4] == b"\x89PNG"
    figure = drawn[-1]
    labels = [line.get_label() for ax in figure.axes for line in ax.get_lines()]
    assert labels.count("kept: epoch 2") == 2 and "the model (ensemble)" in labels and "the network" in labels
    assert figure._suptitle.get_text() == "training of the network (its weight in the ensemble: 0.00)"


def test_robustness_panels_share_their_y_axis(drawn, tmp_path):
    curves = {"image": {"noise": [0.88, 0.875, 0.87]}, "text": {"typos": [0.9, 0.6, 0.3]}}
    plots.plot_robustness(curves, (0.0, 0.5, 1.0), "accuracy", tmp_path / "robustness.png")
    limits = {ax.get_ylim() for ax in drawn[-1].axes}
    assert len(limits) == 1 and min(limits)[0] <= 0.3  # the image panel's 0.01 drop drawn on the text panel's scale

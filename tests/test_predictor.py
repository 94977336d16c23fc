"""End to end through Predictor on generated tables with real image files: every task, round trip, bad input."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import make_table, write_image
from mmfuse import Predictor
from mmfuse.errors import ConfigError, DataError

FAST = {"preset": "fast", "max_epochs": 8, "threads": 2, "progress": False, "verbose": False, "seed": 0}


def opts(**kwargs) -> dict:
    """The fast test options with some replaced."""
    return {**FAST, **kwargs}


def fitted(table_dir, **kwargs) -> Predictor:
    return Predictor(label="y", **opts(ignore=["id"], **kwargs)).fit(table_dir / "train.csv", valid=table_dir / "valid.csv")


def test_binary_end_to_end_and_round_trip(table_dir, tmp_path):
    predictor = fitted(table_dir)
    assert predictor.task_.name == "binary"
    assert {c.name: c.modality for c in predictor.columns_} == {
        "id": "ignore", "text": "text", "image": "image", "x": "numeric", "colour": "categorical"}
    metrics = predictor.evaluate(table_dir / "test.csv")
    assert metrics["accuracy"] >= 0.85 and metrics["roc_auc"] >= 0.9
    preds = predictor.predict_frame(table_dir / "test.csv")
    assert list(preds.columns) == ["row", "id", "inputs_used", "prediction", "proba_0", "proba_1"]
    assert (preds["inputs_used"] == "image+tabular+text").all()
    assert np.allclose(preds[["proba_0", "proba_1"]].sum(axis=1), 1, atol=1e-5)

    path = predictor.save(tmp_path / "model")
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "data_report.json", "learning_curves.png",
                                                      "manifest.json", "metrics.json", "model.safetensors",
                                                      "processors.json", "training_log.csv"]
    loaded = Predictor.load(path, verbose=False)
    again = loaded.predict_frame(table_dir / "test.csv")
    pd.testing.assert_frame_equal(preds, again)
    assert loaded.evaluate(table_dir / "test.csv") == pytest.approx(metrics)
    history = pd.read_csv(path / "training_log.csv")
    assert len(history) == predictor.metrics_["epochs"] and "val_accuracy" in history


def test_outputs_keep_the_input_index_on_a_filtered_and_a_shuffled_frame(table_dir, monkeypatch):
    monkeypatch.chdir(table_dir)
    predictor = fitted(table_dir, max_epochs=2)
    test = pd.read_csv(table_dir / "test.csv").set_index("id", drop=False)
    whole = predictor.predict_proba(test)
    subsets = {"filtered": test[test["x"] > 0.5], "shuffled": test.sample(frac=1, random_state=0)}
    for what, subset in subsets.items():
        proba, labels = predictor.predict_proba(subset), predictor.predict(subset)
        assert proba.index.equals(subset.index) and labels.index.equals(subset.index), what
        pd.testing.assert_frame_equal(proba, whole.loc[subset.index], atol=1e-5)
        joined = subset.assign(pred=labels)  # the user's habit: no NaN, no shift
        assert joined["pred"].notna().all() and (joined["pred"] == labels.loc[joined.index]).all()
        assert (predictor.predict_frame(subset)["row"] == np.arange(len(subset))).all()  # positions, as the CLI writes


def test_fit_returns_self_and_is_deterministic(table_dir, monkeypatch):
    monkeypatch.chdir(table_dir)
    first = Predictor(label="y", **opts(max_epochs=2))
    assert first.fit(table_dir / "train.csv") is first
    second = Predictor(label="y", **opts(max_epochs=2)).fit(table_dir / "train.csv")
    frame = pd.read_csv(table_dir / "test.csv")
    np.testing.assert_allclose(first.predict_proba(frame).to_numpy(), second.predict_proba(frame).to_numpy())


def test_dataframe_image_paths_resolve_against_the_working_directory(tmp_path, monkeypatch):
    frame = make_table(tmp_path, n=40, seed=4)
    with pytest.raises(DataError, match=r"column 'image': not one of \d+ values could be read.*working directory"):
        Predictor(label="y", **opts(ignore=["id"])).fit(frame)
    monkeypatch.chdir(tmp_path)
    assert Predictor(label="y", **opts(ignore=["id"], max_epochs=1)).fit(frame).data_report_["train"]["columns"] == {}


def test_multiclass_with_dataframe_and_auto_split(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frame = make_table(tmp_path, n=240, n_classes=3, seed=5)
    predictor = Predictor(label="y", **opts(ignore=["id"])).fit(frame)
    assert predictor.task_.name == "multiclass" and predictor.task_.classes == [0, 1, 2]
    assert predictor.metrics_["valid"]["accuracy"] >= 0.8
    proba = predictor.predict_proba(make_table(tmp_path, n=30, n_classes=3, seed=6))
    assert list(proba.columns) == ["0", "1", "2"] and proba.shape == (30, 3)


def test_multilabel_from_delimited_strings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frame = make_table(tmp_path, n=240, seed=7)
    frame["tags"] = np.where(frame["y"] == 1, "warm", "cool") + np.where(frame["x"] > 0.5, "|high", "")
    frame = frame.drop(columns="y")
    predictor = Predictor(label="tags", label_sep="|", **opts(ignore=["id"])).fit(frame)
    assert predictor.task_.name == "multilabel" and predictor.task_.classes == ["cool", "high", "warm"]
    assert predictor.metrics_["valid"]["micro_f1"] >= 0.8
    out = predictor.predict_frame(frame.head(5))
    assert {"prediction", "cool", "proba_cool", "high", "proba_high", "warm", "proba_warm"} <= set(out.columns)
    assert set(out["warm"]) <= {0, 1}


def test_multilabel_from_json_lists(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frame = make_table(tmp_path, n=200, seed=8)
    frame["tags"] = [json.dumps(["warm"] if y else ["cool", "calm"]) for y in frame["y"]]
    predictor = Predictor(label="tags", **opts(ignore=["id", "y"])).fit(frame)
    assert predictor.task_.classes == ["calm", "cool", "warm"]
    assert predictor.metrics_["valid"]["subset_accuracy"] >= 0.8


@pytest.mark.parametrize("seed", [0, 1])
def test_regression(tmp_path, monkeypatch, seed):
    """At the fast preset's lr of 0.003 this table's r2 ranged 0.50-0.96 over seeds 0-3 (seed 1 plateaus); at 0.001,
    0.94-0.95: the test holds for more than one lucky seed."""
    monkeypatch.chdir(tmp_path)
    frame = make_table(tmp_path, n=300, seed=9)
    frame["price"] = 10 * frame["y"] + 3 * frame["x"] + 100
    predictor = Predictor(label="price", **opts(max_epochs=20, ignore=["id", "y"], lr=1e-3, seed=seed)).fit(frame)
    assert predictor.task_.name == "regression"
    assert predictor.metrics_["valid"]["r2"] >= 0.7
    preds = predictor.predict(frame.head(10))
    assert preds.between(80, 130).all()


def test_seed_preset_trains_exactly_ten_epochs(table_dir):
    predictor = Predictor(label="y", preset="seed", threads=2, progress=False, verbose=False, ignore=["id"])
    predictor.fit(table_dir / "train.csv", valid=table_dir / "valid.csv")
    assert predictor.metrics_["epochs"] == 10
    assert predictor.evaluate(table_dir / "test.csv")["accuracy"] >= 0.8


# --- bad input -----------------------------------------------------------------------------------------------------
@pytest.fixture
def broken_dir(table_dir):
    """train.csv with a missing image file, a corrupt image, a NaN number, an empty text and a missing label."""
    frame = pd.read_csv(table_dir / "train.csv")
    frame.loc[3, "image"] = "img/does_not_exist.png"
    (table_dir / "img" / "corrupt.png").write_bytes(b"\x89PNG garbage")
    frame.loc[7, "image"] = "img/corrupt.png"
    frame.loc[11, "x"] = np.nan
    frame.loc[12, "text"] = ""
    frame.loc[13, "y"] = np.nan
    frame.to_csv(table_dir / "broken.csv", index=False)
    return table_dir


def test_bad_rows_error_names_row_column_and_file(broken_dir):
    with pytest.raises(DataError, match=r"train row 3, column 'image': image file not found: img/does_not_exist\.png"):
        Predictor(label="y", **opts(on_bad_row="error")).fit(broken_dir / "broken.csv", valid=broken_dir / "valid.csv")


def test_bad_rows_skip_is_reported(broken_dir):
    predictor = Predictor(label="y", **opts(max_epochs=1, on_bad_row="skip"))
    predictor.fit(broken_dir / "broken.csv", valid=broken_dir / "valid.csv")
    report = predictor.data_report_["train"]
    assert sorted(s["row"] for s in report["skipped"]) == [3, 7]
    assert report["used"] == report["rows"] - 2 == 160 - 1 - 2
    assert report["label_missing"] == [13]
    assert report["columns"]["x"]["empty"]["rows"] == [11]
    assert report["columns"]["text"]["empty"]["rows"] == [12]


def test_bad_rows_mask_keeps_rows_and_lists_them(broken_dir, tmp_path):
    predictor = Predictor(label="y", **opts(max_epochs=1, on_bad_row="mask"))
    predictor.fit(broken_dir / "broken.csv", valid=broken_dir / "valid.csv")
    report = predictor.data_report_["train"]
    assert report["used"] == 159 and report["skipped"] == []
    assert report["columns"]["image"]["masked"]["rows"] == [3, 7]
    predictor.save(tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "data_report.json").read_text())
    assert saved["train"]["columns"]["image"]["masked"]["rows"] == [3, 7]
    out = predictor.predict_frame(broken_dir / "broken.csv")
    assert len(out) == 160 and out["prediction"].notna().all()
    assert out.set_index("row").loc[[3, 7, 12], "inputs_used"].tolist() == ["tabular+text", "tabular+text",
                                                                          "image+tabular"]


def test_unseen_category_at_predict_time(table_dir, monkeypatch):
    monkeypatch.chdir(table_dir)
    predictor = fitted(table_dir, max_epochs=1)
    frame = pd.read_csv(table_dir / "test.csv")
    frame.loc[0, "colour"] = "ultraviolet"
    out = predictor.predict_frame(frame)
    assert len(out) == len(frame)
    assert predictor.prepare(frame, "predict")[1].report["columns"]["colour"]["unknown_category"]["rows"] == [0]


def test_missing_label_column_and_missing_input_columns(table_dir, monkeypatch):
    with pytest.raises(DataError, match="label column 'target' not found; columns are: id, text"):
        Predictor(label="target", **FAST).fit(table_dir / "train.csv")
    predictor = fitted(table_dir, max_epochs=1)
    monkeypatch.chdir(table_dir)
    without_image = predictor.predict_frame(pd.read_csv(table_dir / "test.csv").drop(columns="image"))
    assert len(without_image) == 60 and (without_image["inputs_used"] == "tabular+text").all()
    with pytest.raises(DataError, match="none of the model's input columns"):
        predictor.predict(pd.DataFrame({"other": [1, 2]}))


def test_wrong_overrides_are_clear(table_dir):
    with pytest.raises(DataError, match="'text' was set to numeric"):
        Predictor(label="y", **opts(column_types={"text": "numeric"})).fit(table_dir / "train.csv")
    with pytest.raises(ConfigError, match="encoder 'cnn' is for image inputs, but 'text' is text"):
        Predictor(label="y", **opts(encoders={"text": "cnn"}, max_epochs=1)).fit(table_dir / "train.csv")
    with pytest.raises(ConfigError, match="on_bad_row"):
        Predictor(label="y", **opts(on_bad_row="ignore")).fit(table_dir / "train.csv")


def test_per_column_encoder_override(table_dir):
    predictor = fitted(table_dir, encoders={"text": "lstm"}, max_epochs=1)
    assert type(predictor.model_.encoders["text"]).__name__ == "LSTMEncoder"


def test_prediction_does_not_import_lightning(table_dir, tmp_path):
    fitted(table_dir, max_epochs=1).save(tmp_path / "m")
    code = ("import sys; from mmfuse import Predictor; "
            f"Predictor.load(r'{tmp_path / 'm'}', verbose=False).predict(r'{table_dir / 'test.csv'}'); "
            "assert not any(m.startswith(('lightning', 'pytorch_lightning')) for m in sys.modules), 'lightning loaded'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_default_preset_gives_grayscale_images_the_from_scratch_cnn(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "img").mkdir()
    rows = []
    for i in range(48):
        write_image(tmp_path / "img" / f"{i}.png", i % 2, rng, mode="L")
        rows.append({"scan": f"img/{i}.png", "x": float(i % 2 + rng.normal()), "y": i % 2})
    pd.DataFrame(rows).to_csv(tmp_path / "train.csv", index=False)
    predictor = Predictor(label="y", max_epochs=1, threads=2, progress=False, verbose=False).fit(tmp_path / "train.csv")
    scan = next(i for i in predictor.describe()["inputs"] if i["column"] == "scan")
    assert (scan["encoder"], scan["chosen_by"]) == ("cnn", "rule: image with colour=False")
    assert predictor.columns_[0].traits == {"colour": False}
    reloaded = Predictor.load(predictor.save(tmp_path / "model"), verbose=False)
    assert type(reloaded.model_.encoders["scan"]).__name__ == "ResNetEncoder"
    assert reloaded.predict(tmp_path / "train.csv").tolist() == predictor.predict(tmp_path / "train.csv").tolist()


@pytest.mark.parametrize("key, message", [
    ("nme", r"--encoder nme=\.\.\.: 'nme' is neither an input column nor an input kind; columns: id, text"),
    ("x", r"column 'x' is numeric and shares the tabular input .*: use --encoder tabular=NAME"),
    ("id", r"column 'id' is not used \(--ignore\)")])
def test_encoder_for_a_column_that_is_no_input_is_an_error(table_dir, key, message):
    with pytest.raises(DataError, match=message):
        fitted(table_dir, encoders={key: "gru"})


def test_encoder_for_a_kind_the_table_lacks_is_a_warning(table_dir, caplog):
    predictor = fitted(table_dir, max_epochs=1, encoders={"audio": "audio_gru"}, verbose=True)
    assert predictor.task_.name == "binary"
    assert "--encoder audio=...: the table has no audio input; the setting is not used" in caplog.text

"""Models saved before the restructure (bundle format 1, tests/fixtures/format1) still load and predict the same."""

from pathlib import Path

import numpy as np
import pandas as pd

from mmfuse import Predictor, Retriever, load

FIXTURE = Path(__file__).parent / "fixtures" / "format1"


def test_format1_predictor_loads_and_predicts_as_saved():
    predictor = load(FIXTURE / "model", verbose=False)
    assert isinstance(predictor, Predictor)
    assert sorted(predictor.inputs_) == ["image", "seq", "sound", "tabular", "text"]
    expected = pd.read_csv(FIXTURE / "predictions.csv")
    got = predictor.predict_frame(FIXTURE / "table.csv")
    assert got["prediction"].tolist() == expected["prediction"].tolist()
    assert got["inputs_used"].tolist() == expected["inputs_used"].tolist()
    np.testing.assert_allclose(got[["proba_0", "proba_1"]].to_numpy(), expected[["proba_0", "proba_1"]].to_numpy(),
                               atol=1e-5)


def test_format1_predictor_resaves_in_the_current_format(tmp_path):
    predictor = Predictor.load(FIXTURE / "model", verbose=False)
    again = Predictor.load(predictor.save(tmp_path / "m"), verbose=False)
    assert again.predict_frame(FIXTURE / "table.csv").equals(predictor.predict_frame(FIXTURE / "table.csv"))


def test_format1_retriever_embeds_as_saved():
    retriever = load(FIXTURE / "retriever", verbose=False)
    assert isinstance(retriever, Retriever)
    expected = np.loadtxt(FIXTURE / "retriever_embeddings.txt")
    got = retriever.embed_values("text", ["hot red fire x", "calm blue river y"])
    np.testing.assert_allclose(got, expected, atol=1e-5)

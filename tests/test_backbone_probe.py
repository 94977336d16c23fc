"""Value before cost for frozen text features: on a table of ``portfolio.probe_rows`` labelled rows or more, MiniLM's
features are first computed on a sample and kept only when they add to the cheap members on its validation rows;
otherwise the text reads its n-grams alone, and the log and the saved model say so."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from mmfuse import Predictor

OPTIONS = dict(label="y", members=["ngram_linear", "embedding_linear"], threads=2, progress=False,
               config={"portfolio": {"probe_rows": 100}})
FILLER = ["alpha", "bravo", "delta", "echo", "kilo", "lima", "mike", "oscar", "papa", "romeo", "sierra", "tango"]


def coded(n: int, seed: int) -> pd.DataFrame:
    """The text names the label (code0 / code1) amid filler words, wrongly in 15% of rows: its n-grams know all
    there is to know."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    shown = np.where(rng.random(n) < 0.15, 1 - y, y)
    text = [" ".join([*rng.choice(FILLER, 4), f"code{v}", *rng.choice(FILLER, 3)]) for v in shown]
    return pd.DataFrame({"text": text, "y": np.where(y == 1, "yes", "no")})


def sentiment(n: int, seed: int, positive: list[str], negative: list[str]) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    text = [f"the {rng.choice(['day', 'film', 'meal', 'trip'])} was {rng.choice(positive if v else negative)}"
            for v in y]
    return pd.DataFrame({"text": text, "y": np.where(y == 1, "pos", "neg")})


def test_text_features_that_add_nothing_give_way_to_the_n_grams(tmp_path, caplog):
    coded(240, 0).to_csv(tmp_path / "train.csv", index=False)
    coded(100, 1).to_csv(tmp_path / "valid.csv", index=False)
    with caplog.at_level(logging.INFO, logger="mmfuse"):
        p = Predictor(**OPTIONS).fit(tmp_path / "train.csv", valid=tmp_path / "valid.csv")
    line = next(r.message for r in caplog.records if "features probed" in r.message)
    assert line.startswith("input 'text': minilm features probed on 240 + 100 rows: probe ")
    assert line.endswith(": skipped, it reads its n-grams alone")
    assert p.plan_["text"].encoder == "ngrams" and p.config_.column_encoders["text"].name == "ngrams"
    assert p.members_() == ["ngram_linear"]  # no frozen features left for the embedding member
    assert p.metrics_["stages"]["columns"] > 0  # the stage the probe spends its seconds in
    again = Predictor.load(p.save(tmp_path / "model"), verbose=False)
    assert again.plan_["text"].encoder == "ngrams"
    assert (again.predict(tmp_path / "valid.csv") == p.predict(tmp_path / "valid.csv")).all()


def test_text_features_that_add_are_kept_and_read_back_from_the_cache(tmp_path, caplog):
    """Validation's words are not in training's (wonderful / terrible against happy / sad): n-grams cannot carry the
    sentiment over, MiniLM's features do. The full pass then reads the sampled rows' features from the cache."""
    sentiment(200, 0, ["happy", "joyful", "glad", "cheerful", "delighted", "pleased"],
              ["sad", "unhappy", "gloomy", "miserable", "depressed", "upset"]).to_csv(tmp_path / "train.csv", index=False)
    sentiment(80, 1, ["wonderful", "great", "excellent", "fantastic"],
              ["terrible", "awful", "horrible", "dreadful"]).to_csv(tmp_path / "valid.csv", index=False)
    with caplog.at_level(logging.INFO, logger="mmfuse"):
        p = Predictor(**OPTIONS, cache_dir=tmp_path / "cache").fit(tmp_path / "train.csv",
                                                                   valid=tmp_path / "valid.csv")
    line = next(r.message for r in caplog.records if "features probed" in r.message)
    assert line.endswith(": kept") and float(line.split("probe ")[1].split()[0]) > 0
    assert p.plan_["text"].encoder == "minilm" and "embedding_linear" in p.members_()
    assert any(r.message.startswith("train 'text' features: 0 computed, ") for r in caplog.records)


def test_each_text_is_weighed_on_its_own(tmp_path, caplog):
    """The sentiment table beside a column of filler words: the filler's features are left out, the sentiment's
    kept."""
    for name, seed, n, pos, neg in (("train", 0, 200, ["happy", "joyful", "glad", "cheerful"], ["sad", "gloomy", "upset"]),
                                    ("valid", 1, 80, ["wonderful", "great"], ["terrible", "awful"])):
        rng = np.random.default_rng(seed + 10)
        filler = [" ".join(rng.choice(FILLER, 3)) for _ in range(n)]
        sentiment(n, seed, pos, neg).assign(note=filler).to_csv(tmp_path / f"{name}.csv", index=False)
    with caplog.at_level(logging.INFO, logger="mmfuse"):
        p = Predictor(**OPTIONS).fit(tmp_path / "train.csv", valid=tmp_path / "valid.csv")
    lines = {r.message.split("'")[1]: r.message for r in caplog.records if "features probed" in r.message}
    assert lines["note"].endswith("skipped, it reads its n-grams alone") and lines["text"].endswith(": kept")
    assert (p.plan_["note"].encoder, p.plan_["text"].encoder) == ("ngrams", "minilm")


def test_a_table_under_probe_rows_is_not_probed(tmp_path, caplog):
    coded(240, 0).to_csv(tmp_path / "train.csv", index=False)
    coded(100, 1).to_csv(tmp_path / "valid.csv", index=False)
    with caplog.at_level(logging.INFO, logger="mmfuse"):
        p = Predictor(**{**OPTIONS, "config": {"portfolio": {"probe_rows": 341}}}).fit(
            tmp_path / "train.csv", valid=tmp_path / "valid.csv")
    assert not any("probed" in r.message for r in caplog.records) and p.plan_["text"].encoder == "minilm"

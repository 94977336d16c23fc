"""The lexical path: word and char n-grams (``core.ngrams``), the ``ngrams`` encoder, and the ``ngrams`` parameter of a
pretrained text encoder (n-gram ids appended to its frozen features)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from mmfuse import ConfigError, Predictor
from mmfuse.core.ngrams import NgramParams, fit_vocabulary, ngram_ids, ngrams_of
from mmfuse.core.processor import EMPTY, TRUNCATED
from tests.test_pretrained import save_tiny_hf_model


def test_word_and_char_ngrams_of_a_text():
    grams = ngrams_of("Hot red, FIRE! hot a", NgramParams(n=2, chars=[]))
    assert grams == ["hot", "red", "fire", "hot red", "red fire", "fire hot"]  # distinct, lowercased, 2+ letters
    chars = ngrams_of("ab cd", NgramParams(n=1, chars=[2, 3]))
    assert chars == ["ab", "cd", "# a", "#ab", "#b ", "# ab", "#ab ", "# c", "#cd", "#d ", "# cd", "#cd "]


def test_vocabulary_keeps_ngrams_seen_in_enough_texts_most_frequent_first():
    texts = ["red fire", "red sky", "red fire", "blue"]
    params = NgramParams(n=2, chars=[], min_count=2)
    assert fit_vocabulary(texts, params) == ["red", "fire", "red fire"]
    assert fit_vocabulary(texts, params.model_copy(update={"max_features": 1})) == ["red"]


def test_ids_report_empty_texts_and_cut_long_ones():
    params = NgramParams(n=1, chars=[], max_ngrams=2)
    index = {"aa": 1, "bb": 2, "cc": 3}
    out = ngram_ids(pd.Series(["aa bb", None, "cc bb aa zzz", "zzz x"]), index, params, "quote")
    assert out.values.tolist() == [[1, 2], [0, 0], [3, 2], [0, 0]]  # unknown n-grams dropped
    assert out.present.tolist() == [True, False, True, True]
    assert [(p.row, p.column, p.kind) for p in out.problems] == [(1, "quote", EMPTY), (2, "quote", TRUNCATED)]
    assert "more than 2 known n-grams, kept the first ones" in out.problems[1].detail


def test_the_networks_bag_reads_a_texts_first_bag_ngrams():
    """``bag_ngrams``: the network's bag reads each row's first ids (unigrams come first), the rest as if cut by the
    processor; None reads them all."""
    from mmfuse.nn.bag import NgramBag

    torch.manual_seed(0)
    bag, every = NgramBag(10, dim=4, reads=2), NgramBag(10, dim=4)
    every.load_state_dict(bag.state_dict())
    ids = torch.tensor([[1, 2, 3, 4], [5, 0, 0, 0]])
    assert torch.allclose(bag(ids), every(ids[:, :2])) and not torch.allclose(bag(ids), every(ids))
    from mmfuse.config import load_config

    assert load_config("default").encoders["text"].params["ngrams"]["bag_ngrams"] == 1024


def test_ngrams_encoder_learns_saves_and_reloads(table_dir, tmp_path):
    p = Predictor(label="y", encoders={"text": "ngrams"}, preset="fast", max_epochs=15, ignore=["id", "image"],
                  progress=False, verbose=False, threads=2).fit(table_dir / "train.csv", valid=table_dir / "valid.csv")
    assert p.pipeline_.processors["text"].kind == "ngram_text"
    assert p.metrics_["valid"]["accuracy"] >= 0.75
    p.save(tmp_path / "m")
    again = Predictor.load(tmp_path / "m")
    assert again.predict_proba(table_dir / "test.csv").equals(p.predict_proba(table_dir / "test.csv"))


def test_pretrained_text_with_ngrams_frozen_and_finetuned(table_dir, tmp_path):
    tiny = save_tiny_hf_model(tmp_path / "bert")
    encoder = {"name": "text_hf", "params": {"source": str(tiny), "proj_dim": 16, "ngrams": {"min_count": 1, "dim": 8}}}
    common = dict(preset="fast", max_epochs=3, ignore=["id", "image"], cache_dir=tmp_path / "cache", progress=False,
                  verbose=False, threads=2)
    p = Predictor(label="y", config={"encoders": {"text": encoder}}, **common).fit(table_dir / "train.csv")
    proc, enc = p.pipeline_.processors["text"], p.model_.encoders["text"]
    assert enc.output_dim == 16 + 8 and enc.words.embed.num_embeddings == len(proc.ngram_vocabulary_) + 1
    assert [i["encoder"] for i in p._inputs() if i["column"] == "text"] == ["text_hf + n-grams"]

    stored = proc.transform(pd.read_csv(table_dir / "test.csv")["text"], table_dir).values  # (N, F + L)
    features, ids = stored[:, :32], stored[:, 32:]
    assert torch.equal(ids, ids.round()) and ids.max() <= len(proc.ngram_vocabulary_) and (ids > 0).any(1).all()
    gen = torch.Generator().manual_seed(0)
    noisy, dropped = proc.corruptions()["feature noise"], proc.corruptions()["word drop"]
    assert torch.equal(noisy(stored, 1.0, gen)[:, 32:], ids) and not torch.equal(noisy(stored, 1.0, gen), stored)
    after = dropped(stored, 0.5, gen)
    assert torch.equal(after[:, :32], features) and (after[:, 32:] != 0).sum() < (ids != 0).sum()

    p.save(tmp_path / "m")
    state = json.loads((tmp_path / "m" / "processors.json").read_text())["text"]
    assert state["fitted"]["ngram_vocabulary_"] == proc.ngram_vocabulary_
    again = Predictor.load(tmp_path / "m", cache_dir=tmp_path / "cache")
    assert again.predict_proba(table_dir / "test.csv").equals(p.predict_proba(table_dir / "test.csv"))

    tuned = Predictor(label="y", config={"encoders": {"text": encoder}}, finetune=True, **{**common, "max_epochs": 1})
    tuned.fit(table_dir / "train.csv")
    assert tuned.model_.encoders["text"].backbone is not None and tuned.model_.encoders["text"].split == 64
    assert len(tuned.predict(table_dir / "test.csv")) == 60


def test_bad_ngram_settings_name_the_column(table_dir):
    bad = {"encoders": {"text": {"name": "ngrams", "params": {"chars": [5, 2]}}}}
    with pytest.raises(ConfigError, match="column 'text': ngrams.chars: .*lo <= hi"):
        Predictor(label="y", config=bad, preset="fast", ignore=["id"], progress=False, verbose=False).fit(
            table_dir / "train.csv")

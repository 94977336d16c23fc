"""Model assembly: encoders per input, fusion, head; modality dropout; mixed precision."""

import torch

from mmfuse import Predictor
from mmfuse.config import load_config
from conftest import model_from_config

SPECS = {"text": ("text", {"vocab_size": 30, "max_length": 6}), "image": ("image", {"in_channels": 1, "image_size": 12})}


def batch(n=16):
    return {"text": torch.randint(1, 30, (n, 6)), "image": torch.randn(n, 1, 12, 12)}


def test_build_model_uses_the_preset_encoders_and_output_width():
    model = model_from_config(load_config("scratch"), SPECS, out_dim=4)
    assert type(model.encoders["text"]).__name__ == "GRUEncoder"
    assert type(model.encoders["image"]).__name__ == "ResNetEncoder"
    out = model(batch())
    assert out.logits.shape == (16, 4) and out.fused.shape[0] == 16


def test_modality_dropout_hides_inputs_in_training_only():
    cfg = load_config("scratch", overrides={"modality_dropout": 0.5})
    model = model_from_config(cfg, SPECS, out_dim=2)
    torch.manual_seed(0)
    present = model._drop_modalities({"text": torch.zeros(1000, 1), "image": torch.zeros(1000, 1)}, None)
    kept = torch.stack([present["image"], present["text"]], dim=1)
    assert kept.any(1).all(), "a row never loses every input"
    assert 0.2 < (~kept).float().mean() < 0.45
    x = batch()
    model.eval()
    assert torch.equal(model(x).logits, model(x).logits)


def test_bf16_precision_trains_and_predicts(table_dir):
    predictor = Predictor(label="y", preset="fast", config={"train": {"precision": "bf16"}}, max_epochs=3, threads=2,
                          progress=False, verbose=False, ignore=["id"])
    predictor.fit(table_dir / "train.csv", valid=table_dir / "valid.csv")
    proba = predictor.predict_proba(table_dir / "test.csv")
    assert proba.dtypes.eq("float32").all() or proba.dtypes.eq("float64").all()
    assert predictor.evaluate(table_dir / "test.csv")["accuracy"] >= 0.8


def rows_seen_by(model) -> dict[str, list[int]]:
    """Record how many rows each encoder's forward pass receives."""
    seen: dict[str, list[int]] = {name: [] for name in model.encoders}
    for name, encoder in model.encoders.items():
        encoder.register_forward_hook(lambda module, args, out, name=name: seen[name].append(len(args[0])))
    return seen


def test_an_encoder_sees_only_the_rows_where_its_input_is_present():
    torch.manual_seed(0)
    model = model_from_config(load_config("scratch"), SPECS, out_dim=3).train()
    seen = rows_seen_by(model)
    x = batch(8)
    image_present = torch.tensor([True, False, False, True, False, False, True, False])
    out = model(x, {"image": image_present}).logits
    assert seen == {"image": [3], "text": [8]}
    out.sum().backward()
    assert all(p.grad is not None for p in model.encoders["image"].parameters() if p.requires_grad)

    model.eval()
    with torch.no_grad():
        sparse = model(x, {"image": image_present}).logits
        changed = {**x, "image": x["image"] + torch.randn_like(x["image"]) * ~image_present.view(-1, 1, 1, 1)}
        assert torch.allclose(model(changed, {"image": image_present}).logits, sparse)  # absent rows are never read
        alone = model({n: t[image_present] for n, t in x.items()}).logits
        assert torch.allclose(sparse[image_present], alone, atol=1e-5)  # present rows as if the batch held only them


def test_an_input_absent_from_the_whole_batch_costs_no_forward_pass():
    model = model_from_config(load_config("scratch"), SPECS, out_dim=3).eval()
    seen = rows_seen_by(model)
    with torch.no_grad():
        out = model(batch(8), {"image": torch.zeros(8, dtype=torch.bool)}).logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = model(batch(8), {"image": torch.zeros(8, dtype=torch.bool)}).logits
    assert seen == {"image": [], "text": [8, 8]}
    assert out.shape == mixed.shape == (8, 3) and torch.isfinite(out).all() and torch.isfinite(mixed.float()).all()

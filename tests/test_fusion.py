"""Every fusion method: shapes, gradients to every encoder, masks honoured, and learning an XOR of two inputs."""

import pytest
import torch
from torch import nn

from mmfuse import list_fusions
from mmfuse.config import load_config
from conftest import model_from_config
from mmfuse.registry import FUSIONS

DIMS = {"b": 7, "a": 5, "c": 3}
SPECS = {"text": ("text", {"vocab_size": 30, "max_length": 6}), "image": ("image", {"in_channels": 1, "image_size": 12}),
         "tabular": ("tabular", {"num_numeric": 2, "cardinalities": [4]})}


def feats(batch=6):
    torch.manual_seed(0)
    return {n: torch.randn(batch, d) for n, d in DIMS.items()}


@pytest.mark.parametrize("name", list_fusions())
def test_shape_and_no_nan_with_absent_inputs(name):
    fusion = FUSIONS.create(name, DIMS, out_dim=4).eval()
    masks = {"a": torch.tensor([1, 0, 1, 0, 1, 0]).bool(), "c": torch.tensor([1, 1, 0, 0, 1, 0]).bool(),
             "b": torch.tensor([1, 1, 1, 0, 0, 0]).bool()}  # row 3 and 5: nothing present
    out = fusion(feats(), masks)
    assert out.shape == (6, fusion.output_dim) and torch.isfinite(out).all()
    assert fusion(feats(), None).shape == out.shape


@pytest.mark.parametrize("name", list_fusions())
def test_absent_input_cannot_change_the_output(name):
    fusion = FUSIONS.create(name, DIMS, out_dim=4).eval()
    x = feats()
    masks = {"a": torch.tensor([1, 0, 1, 1, 0, 1]).bool()}
    changed = dict(x, a=x["a"] + 50 * torch.randn_like(x["a"]))
    before, after = fusion(x, masks), fusion(changed, masks)
    absent = ~masks["a"]
    assert torch.allclose(before[absent], after[absent], atol=1e-5)
    assert not torch.allclose(before[~absent], after[~absent]), "a present input must matter"


@pytest.mark.parametrize("name", list_fusions())
def test_gradients_reach_every_encoder(name):
    cfg = load_config("fast", overrides={"fusion": {"name": name}})
    model = model_from_config(cfg, SPECS, out_dim=3)
    batch = {"text": torch.randint(1, 30, (8, 6)), "image": torch.randn(8, 1, 12, 12),
             "tabular": torch.cat([torch.randn(8, 2), torch.randint(0, 4, (8, 1)).float()], dim=1)}
    model(batch).logits.pow(2).sum().backward()
    for input_name, encoder in model.encoders.items():
        grads = [p.grad for p in encoder.parameters() if p.requires_grad]
        assert grads and all(g is not None and g.abs().sum() > 0 for g in grads), input_name


@pytest.mark.parametrize("name", list_fusions())
def test_learns_an_xor_of_two_inputs(name):
    """label = sign(a) XOR sign(b): no single input tells anything; every method here can express it."""
    torch.manual_seed(0)
    n = 512
    a, b = torch.randn(n, 4), torch.randn(n, 4)
    y = ((a[:, 0] > 0) ^ (b[:, 0] > 0)).long()
    encoders = nn.ModuleDict({"a": nn.Sequential(nn.Linear(4, 16), nn.GELU()),
                              "b": nn.Sequential(nn.Linear(4, 16), nn.GELU())})
    small = {"dim": 32} if name == "attention" else {}  # 128 wide takes 20 s of CPU to learn the same
    fusion = FUSIONS.create(name, {"a": 16, "b": 16}, out_dim=2, **small)
    head = nn.Identity() if fusion.emits_logits else nn.Sequential(nn.Linear(fusion.output_dim, 32), nn.GELU(),
                                                                    nn.Linear(32, 2))
    params = [*encoders.parameters(), *fusion.parameters(), *head.parameters()]
    optimizer = torch.optim.Adam(params, lr=3e-3)
    for _ in range(300):
        logits = head(fusion({"a": encoders["a"](a), "b": encoders["b"](b)}, None))
        loss = nn.functional.cross_entropy(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    accuracy = (logits.argmax(1) == y).float().mean().item()
    if name == "late":  # a sum of per-input logits cannot express XOR: the expected failure
        assert accuracy < 0.75
    else:
        assert accuracy > 0.9, f"{name}: {accuracy:.2f}"

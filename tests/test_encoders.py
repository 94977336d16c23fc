"""Every registered encoder: forward, backward, output width, padding; the seed preset's Keras parameter count."""

import pytest
import torch

from mmfuse import list_encoders
from mmfuse.config import EncoderCfg, load_config
from conftest import model_from_config

from mmfuse.nn.model import make_encoder
from mmfuse.registry import ENCODERS

DATA_KWARGS = {"text": {"vocab_size": 50, "max_length": 12}, "image": {"in_channels": 3, "image_size": 16},
               "audio": {"in_features": 16}, "sequence": {"in_features": 5},
               "tabular": {"num_numeric": 4, "cardinalities": [5, 3]}}


def sample_input(modality: str, batch: int = 4) -> torch.Tensor:
    if modality == "text":
        ids = torch.randint(1, 50, (batch, 12))
        ids[0, 5:] = 0  # a shorter row
        ids[1, :] = 0   # an empty row
        return ids
    if modality == "image":
        return torch.randn(batch, 3, 16, 16)
    if modality in ("audio", "sequence"):
        frames = torch.randn(batch, 20, DATA_KWARGS[modality]["in_features"] + 1)
        frames[..., -1] = 1.0
        frames[0, 7:] = 0.0   # a shorter row: padding has zero features and mask
        return frames
    return torch.cat([torch.randn(batch, 4), torch.randint(0, 5, (batch, 1)).float(),
                      torch.randint(0, 3, (batch, 1)).float()], dim=1)


@pytest.mark.parametrize("name", list_encoders())
def test_encoder_forward_backward(name):
    torch.manual_seed(0)
    modality = ENCODERS.meta(name)["modality"]
    if ENCODERS.meta(name).get("processor", "").startswith("pretrained"):  # frozen: reads cached (B, F) features
        encoder, x = make_encoder(EncoderCfg(name=name), {"feature_dim": 24}), torch.randn(4, 24)
    else:
        encoder, x = make_encoder(EncoderCfg(name=name), DATA_KWARGS[modality]), sample_input(modality)
    out = encoder(x)
    assert out.shape == (4, encoder.output_dim)
    assert torch.isfinite(out).all()
    out.pow(2).sum().backward()
    trainable = {n: p for n, p in encoder.named_parameters() if p.requires_grad}
    assert trainable
    no_grad = [n for n, p in trainable.items() if p.grad is None or not torch.any(p.grad != 0)]
    assert not no_grad, f"parameters without gradient: {no_grad}"


def test_pretrained_text_encoder_with_ngrams_splits_features_from_ngram_ids():
    torch.manual_seed(0)
    encoder = make_encoder(EncoderCfg(name="minilm", params={"proj_dim": 8, "ngrams": {"dim": 6}}),
                           {"feature_dim": 24, "ngram_vocab_size": 30})
    features, ids = torch.randn(3, 24), torch.tensor([[4, 9, 0], [0, 0, 0], [29, 1, 2]])
    out = encoder(torch.cat([features, ids.float()], 1))
    assert out.shape == (3, 8 + 6) and encoder.output_dim == 14
    assert torch.allclose(out[:, :8], encoder.proj(features), atol=1e-6)
    assert torch.allclose(out[0, 8:], (encoder.words.embed.weight[4] + encoder.words.embed.weight[9]) / 2 ** 0.5)
    assert torch.equal(out[1, 8:], torch.zeros(6))  # no known n-gram: zeros
    out.pow(2).sum().backward()
    assert encoder.words.embed.weight.grad[[1, 2, 4, 9, 29]].abs().sum(1).gt(0).all()
    assert encoder.words.embed.weight.grad[0].eq(0).all()  # padding never learns


def test_unknown_encoder_names_choices():
    with pytest.raises(Exception, match="choose from: .*lstm"):
        ENCODERS.create("nope")


def keras_seed_params(vocab: int, embed: int, units: int, channels: int, size: int, classes: int) -> int:
    """Parameter count of the seed document's Keras model, by Keras's formulas."""
    embedding = vocab * embed
    lstm = 4 * (units * (embed + units) + units)          # one bias vector per gate
    conv = 3 * 3 * channels * 32 + 32
    flat = 32 * ((size - 2) // 2) ** 2
    dense = (units + flat + 1) * (1 if classes == 2 else classes)
    return embedding + lstm + conv + dense


@pytest.mark.parametrize("classes", [2, 5])
def test_seed_preset_matches_keras_parameter_count(classes):
    cfg = load_config("seed")
    specs = {"text": ("text", {"vocab_size": 10000}), "image": ("image", {"in_channels": 3, "image_size": 28})}
    model = model_from_config(cfg, specs, out_dim=1 if classes == 2 else classes)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == keras_seed_params(10000, 128, 128, 3, 28, classes)
    assert trainable == 1_418_017 if classes == 2 else True


@pytest.mark.parametrize("name", [n for n in list_encoders() if ENCODERS.meta(n)["modality"] in ("audio", "sequence")])
def test_frame_encoders_ignore_padding(name):
    torch.manual_seed(0)
    modality = ENCODERS.meta(name)["modality"]
    encoder = make_encoder(EncoderCfg(name=name), DATA_KWARGS[modality]).eval()
    x = sample_input(modality)
    longer = torch.cat([x, torch.zeros(4, 9, x.shape[-1])], dim=1)  # more padding steps
    noisy = x.clone()
    noisy[0, 7:, :-1] = torch.randn_like(noisy[0, 7:, :-1])  # garbage under the mask
    assert torch.allclose(encoder(x), encoder(longer), atol=1e-5)
    assert torch.allclose(encoder(x)[0], encoder(noisy)[0], atol=1e-5)

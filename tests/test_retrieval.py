"""Retrieval: InfoNCE, ranking metrics, two-tower training with encoders from scratch, index / search, zero-shot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from mmfuse import DataError, Retriever, load
from mmfuse.tasks.retrieval import info_nce, match_ranks, retrieval_metrics

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 40), "blue": (30, 60, 220), "yellow": (230, 220, 30),
           "purple": (140, 40, 170), "cyan": (40, 210, 220), "orange": (240, 140, 20), "black": (10, 10, 10)}
PLACES = ("top", "bottom")


def write_block(path: Path, colour: str, place: str, rng: np.random.Generator) -> None:
    """A 16 px white image with a coloured block in its top or bottom half."""
    pixels = np.full((16, 16, 3), 255, dtype=np.int64) - rng.integers(0, 40, (16, 16, 3))
    rows = slice(1, 7) if place == "top" else slice(9, 15)
    pixels[rows, 2:14] = np.array(COLOURS[colour]) + rng.integers(-15, 15, 3)
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path)


def pair_table(folder: Path, n: int, seed: int) -> pd.DataFrame:
    """Columns caption ("a red block at the top"), image, colour; 16 (colour, place) kinds."""
    rng = np.random.default_rng(seed)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        colour, place = rng.choice(list(COLOURS)), rng.choice(PLACES)
        write_block(folder / "img" / f"{seed}_{i}.png", colour, place, rng)
        rows.append({"caption": f"a {colour} block at the {place}", "image": f"img/{seed}_{i}.png", "colour": colour})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pairs")
    for name, seed, n in (("train", 0, 320), ("valid", 1, 64), ("test", 2, 64)):
        pair_table(folder, n, seed).to_csv(folder / f"{name}.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def fitted(pairs_dir) -> Retriever:
    """Towers from scratch (GRU text, CNN image) trained on the generated pairs."""
    return Retriever(query="caption", target="image", preset="fast", max_epochs=20, threads=2, progress=False,
                     verbose=False).fit(pairs_dir / "train.csv", valid=pairs_dir / "valid.csv")


def test_info_nce_matches_a_direct_computation():
    gen = torch.Generator().manual_seed(0)
    q, t = torch.randn(5, 8, generator=gen), torch.randn(5, 8, generator=gen)
    logits = (q @ t.T).tolist()
    row = [-logits[i][i] + np.log(np.exp(logits[i]).sum()) for i in range(5)]
    col = [-logits[i][i] + np.log(np.exp([logits[j][i] for j in range(5)]).sum()) for i in range(5)]
    assert float(info_nce(q, t)) == pytest.approx((np.mean(row) + np.mean(col)) / 2, rel=1e-5)


def test_ranks_and_metrics_on_hand_made_similarities():
    perfect = retrieval_metrics(np.eye(4))
    assert perfect["q2t_r@1"] == perfect["t2q_r@1"] == 1.0 and perfect["q2t_median_rank"] == 1.0
    assert perfect["q2t_mrr"] == 1.0 and perfect["mean_recall"] == 1.0
    # query i's match is last for i=0 (rank 4), second for i=1, first for i=2 and 3
    sim = np.array([[0.1, 0.9, 0.8, 0.7],
                    [0.9, 0.5, 0.1, 0.0],
                    [0.0, 0.0, 0.9, 0.1],
                    [0.0, 0.0, 0.0, 0.3]])
    assert match_ranks(sim).tolist() == [4, 2, 1, 1]
    m = retrieval_metrics(sim)
    assert m["q2t_r@1"] == 0.5 and m["q2t_r@5"] == 1.0
    assert m["q2t_median_rank"] == 1.5 and m["q2t_mrr"] == pytest.approx((1 / 4 + 1 / 2 + 1 + 1) / 4)
    assert match_ranks(sim.T).tolist() == [2, 2, 1, 2]  # target -> query reads the columns
    assert match_ranks(np.ones((3, 3))).tolist() == [3, 3, 3]  # ties count against the match


def test_a_locked_tower_is_the_shared_space():
    from torch import nn

    from mmfuse.modalities.image.pretrained import EfficientNetLite0Encoder
    from mmfuse.modalities.text.pretrained import MiniLMEncoder
    from mmfuse.nn.two_tower import TwoTowerModel

    towers = nn.ModuleDict({"caption": MiniLMEncoder(24, proj_dim=0), "image": EfficientNetLite0Encoder(40, proj_dim=0)})
    model = TwoTowerModel(towers, "caption", "image", embed_dim=256, locked="caption")
    assert isinstance(model.projections["caption"], nn.Identity) and not list(towers["caption"].parameters())
    assert model.projections["image"].weight.shape == (24, 40)  # images map into the text features' space
    out = model({"caption": torch.randn(3, 24), "image": torch.randn(3, 40)}).logits
    assert out.shape == (3, 2, 24)
    unlocked = TwoTowerModel(towers, "caption", "image", embed_dim=16)
    assert unlocked({"caption": torch.randn(3, 24), "image": torch.randn(3, 40)}).logits.shape == (3, 2, 16)


def test_scratch_towers_learn_to_retrieve(fitted, pairs_dir):
    metrics = fitted.evaluate(pairs_dir / "test.csv")
    assert metrics["pairs"] == 64
    # 16 kinds of pair, 64 test pairs: a model that knows the kind ranks the match among ~4 look-alikes (chance:
    # 5/64 at R@5). Captions of one kind are identical, so image -> caption ties them all (ties count against).
    assert metrics["q2t_r@5"] > 0.6 and metrics["t2q_r@10"] > 0.6, metrics
    shot = fitted.zero_shot(pairs_dir / "test.csv", "colour", prompt="a {} block")
    assert shot["classes"] == len(COLOURS) and shot["accuracy"] > 0.5  # chance 1/8


def test_save_load_round_trip_and_dispatch(fitted, pairs_dir, tmp_path):
    fitted.save(tmp_path / "m")
    again = load(tmp_path / "m")
    assert isinstance(again, Retriever)
    assert again.evaluate(pairs_dir / "test.csv") == fitted.evaluate(pairs_dir / "test.csv")
    from mmfuse import Predictor, BundleError
    with pytest.raises(BundleError, match="retrieval model"):
        Predictor.load(tmp_path / "m")


def test_pairs_missing_a_side_are_left_out_and_reported(fitted, pairs_dir, tmp_path):
    frame = pd.read_csv(pairs_dir / "test.csv")
    frame.loc[3, "image"] = "img/not_there.png"
    frame.loc[5, "caption"] = ""
    frame["image"] = [str(pairs_dir / p) for p in frame["image"]]
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    fitted.evaluate(path)
    metrics = fitted.evaluate(path)
    assert metrics["pairs"] == 62
    report = fitted._encode(frame, tmp_path, "t").report
    assert report["pairs_left_out"] == [3, 5]


def test_errors_name_the_column(fitted, pairs_dir):
    with pytest.raises(DataError, match="'caption' not found"):
        fitted.evaluate(pd.DataFrame({"image": ["x.png"]}))
    with pytest.raises(DataError, match="no text tower|no tower"):
        fitted.embed_values("colour", ["red"])


def test_index_and_search_commands(fitted, pairs_dir, tmp_path):
    """In this process, as the console script runs them (``corpus.cli``); the README test runs the console script."""
    from corpus import cli

    model = fitted.save(tmp_path / "m")
    built = cli("index", model, pairs_dir / "test.csv", "--out", tmp_path / "idx")
    assert built.code == 0, built
    assert "indexed 64 items of 'image'" in built.out
    meta = json.loads((tmp_path / "idx" / "index.json").read_text())
    assert len(meta["rows"]) == 64 and meta["tower"] == "image"
    assert set(meta["extra"]) == {"caption", "colour"}  # the items' other columns, shown with each result
    found = cli("search", tmp_path / "idx", "a red block at the top", "-k", "3")
    assert found.code == 0, found
    test = pd.read_csv(pairs_dir / "test.csv")
    top_rows = [int(line.split()[5]) for line in found.out.splitlines() if line.startswith("│") and ".png" in line]
    assert len(top_rows) == 3
    assert sum(test.loc[r, "caption"] == "a red block at the top" for r in top_rows) >= 2
    by_image = cli("search", tmp_path / "idx", "--image", pairs_dir / test.loc[0, "image"], "-k", "1")
    assert by_image.code == 0 and test.loc[0, "image"] in by_image.out  # an item finds itself first
    both = cli("search", tmp_path / "idx", "red", "--image", "x.png")
    assert both.code != 0 and "exactly one query" in both.error_line
    # evaluate --zero-shot from the command line: the README test runs the README's
    predicted = cli("predict", model, pairs_dir / "test.csv")
    assert predicted.code == 2 and "retrieval model" in predicted.error_line


def test_fit_command_retrieval_needs_both_columns(pairs_dir, tmp_path):
    from corpus import cli

    result = cli("fit", pairs_dir / "train.csv", "--task", "retrieval", "--query", "caption", "--out", tmp_path / "m")
    assert result.code == 2 and "--query and --target" in result.error_line


def test_audio_text_pairs(tmp_path):
    """Audio-text retrieval works the same way: tones whose pitch the caption names."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    (tmp_path / "wav").mkdir()
    pitches = {"low": 220.0, "middle": 660.0, "high": 1800.0, "very high": 3500.0}
    rows = []
    for i in range(160):
        name = rng.choice(list(pitches))
        t = np.arange(8000) / 16000
        wave = 0.5 * np.sin(2 * np.pi * pitches[name] * t) + 0.05 * rng.normal(size=t.size)
        sf.write(tmp_path / "wav" / f"{i}.wav", wave.astype(np.float32), 16000)
        rows.append({"caption": f"a {name} tone", "audio": f"wav/{i}.wav"})
    frame = pd.DataFrame(rows)
    frame.iloc[:120].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[120:].to_csv(tmp_path / "valid.csv", index=False)
    r = Retriever(query="caption", target="audio", preset="fast", max_epochs=30, batch_size=32, threads=2, progress=False,
                  verbose=False)
    metrics = r.fit(tmp_path / "train.csv", valid=tmp_path / "valid.csv").evaluate(tmp_path / "valid.csv")
    assert metrics["q2t_r@10"] > 0.7, metrics  # 4 pitches among 40 pairs: knowing the pitch gives ~0.9; chance 0.25


def test_a_retriever_fits_with_a_checkpoint_folder_and_resumes_to_the_same_towers(pairs_dir, tmp_path):
    """As the command line fits (it always keeps OUT.partial/): interrupted after epoch 1, resumed to the weights an
    uninterrupted fit reaches."""
    from test_resume_state import Interrupted, StopAtEpoch

    settings = dict(query="caption", target="image", preset="fast", max_epochs=3, threads=2, progress=False,
                    verbose=False)
    data = dict(train=pairs_dir / "valid.csv", valid=pairs_dir / "test.csv")  # the small tables: quicker
    whole = Retriever(**settings).fit(data["train"], valid=data["valid"], checkpoint_dir=tmp_path / "whole")
    with pytest.raises(Interrupted):
        Retriever(**settings).fit(data["train"], valid=data["valid"], checkpoint_dir=tmp_path / "ck",
                                  callbacks=[StopAtEpoch(1)])
    resumed = Retriever(**settings).fit(data["train"], valid=data["valid"], checkpoint_dir=tmp_path / "ck",
                                        resume=True)
    a, b = whole.model_.state_dict(), resumed.model_.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.metrics_["valid"] == whole.metrics_["valid"]

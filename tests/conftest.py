"""Shared fixtures: small generated tables whose image columns point at real PNG files on disk."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import mmfuse.estimators  # noqa: F401  (registers the built-in plugins, as every entry point does)

torch.set_num_threads(2)
os.environ["HF_HUB_OFFLINE"] = "1"  # and any socket connection fails the test (below): nothing may download


class NetworkAccess(AssertionError):
    pass


LOOPBACK = ("127.0.0.1", "::1", "localhost")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Fail any test whose code tries to open a network connection; loopback (a server the test started on
    127.0.0.1 / ::1) and local Unix sockets stay allowed."""
    real_connect = socket.socket.connect

    def guarded(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOOPBACK:
            raise NetworkAccess(f"network access attempted: {address}")
        return real_connect(sock, address)

    real_getaddrinfo = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if host not in (None, *LOOPBACK):
            raise NetworkAccess(f"network access attempted: name lookup of {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket, "getaddrinfo", resolve)

WORDS = {0: ["calm", "blue", "river", "cool", "quiet"], 1: ["hot", "red", "fire", "loud", "bright"],
         2: ["green", "leaf", "forest", "moss", "fern"]}


def write_image(path: Path, label: int, rng: np.random.Generator, size: int = 16, mode: str = "RGB") -> None:
    """A noisy image whose dominant colour channel is the label."""
    pixels = rng.integers(0, 90, (size, size, 3))
    pixels[..., label % 3] += 150
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).convert(mode).save(path)


def make_table(folder: Path, n: int = 120, n_classes: int = 2, seed: int = 0) -> pd.DataFrame:
    """Columns: id, text, image (relative path), x (numeric), colour (categorical), y (label 0..n_classes-1)."""
    rng = np.random.default_rng(seed)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        y = int(rng.integers(n_classes))
        noisy = int(rng.integers(n_classes)) if rng.random() < 0.3 else y
        words = list(rng.choice(WORDS[noisy], 3)) + list(rng.choice(sum(WORDS.values(), []), 2))
        write_image(folder / "img" / f"{seed}_{i}.png", y, rng)
        rows.append({"id": f"r{seed}_{i}", "text": " ".join(words), "image": f"img/{seed}_{i}.png",
                     "x": float(y + rng.normal(0, 1.0)), "colour": ["a", "b", "c"][(y + int(rng.random() < 0.4)) % 3],
                     "y": y})
    return pd.DataFrame(rows)


def write_tables(folder: Path, **rows: int) -> Path:
    """``make_table`` splits as NAME.csv in ``folder`` (train seed 0, valid 1, test 2), e.g. ``train=160, valid=60``."""
    seeds = {"train": 0, "valid": 1, "test": 2}
    for name, n in rows.items():
        make_table(folder, n=n, seed=seeds[name]).to_csv(folder / f"{name}.csv", index=False)
    return folder


@pytest.fixture
def table_dir(tmp_path: Path) -> Path:
    """A folder with train.csv / valid.csv / test.csv (binary) and their images."""
    return write_tables(tmp_path, train=160, valid=60, test=60)


def model_from_config(cfg, specs: dict, out_dim: int):
    """A network from a config for inputs given as name -> (input kind, what the processor tells the encoder), the
    config choosing each encoder as for a table's columns."""
    from mmfuse.nn.model import build_model

    return build_model({n: (cfg.encoder_for(n, kind), data) for n, (kind, data) in specs.items()}, out_dim,
                       cfg.fusion.name, cfg.fusion.params, cfg.head.model_dump(), cfg.modality_dropout)

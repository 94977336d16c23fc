"""Pick presets on validation data (never test): each candidate is a base preset with the overrides shown.

    make realdata                                                    # once: the real tables' packages
    python benchmarks/pick_default.py [--group fortunes] [--threads 2] [--only NAME ...]

Groups (table, base preset):
- ``fortunes``, ``emoji``, ``avdigits-sparse``: the ``default`` preset on three real tables of benchmarks/realdata.py
  (long text; colour images + short text; grayscale images + a sparse sequence): the text truncation length, the
  head, the training precision, and the grayscale rule (from-scratch CNN vs EfficientNet-Lite0 features);
- ``scratch``: the ``scratch`` preset (the default until commit ed5cff8) on the emoji table.

Prints validation accuracy / macro-F1 / epochs / fit time per candidate (a fresh feature cache per group, so the
first candidate of a group pays for the frozen features and the others read them).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from realdata_tables import build  # noqa: E402

from mmfuse import Predictor  # noqa: E402

MINILM = {"name": "minilm", "params": {"proj_dim": 256}}
EFFICIENTNET = {"name": "efficientnet_lite0", "params": {"proj_dim": 256, "image_size": 224}}
CNN = {"name": "cnn", "params": {"widths": [32, 64, 128], "pool_grid": 4}}


def _lexical(**ngrams) -> dict:
    """The default's text encoder with these ``ngrams`` settings (merged over the preset's own)."""
    return {"encoders": {"text": {"params": {"ngrams": ngrams}}}}


def _bag_alone(**settings) -> dict:
    """The ``ngrams`` encoder alone for text, with these settings."""
    return {"encoders": {"text": {"name": "ngrams", "params": {"dim": 64, **settings}}}}


NGRAM_CANDIDATES = {  # the lexical path next to the frozen sentence embedding (the default: char 2-5, 50k, 1024)
    "minilm + word 1-2-gram bag (dim 64)": _lexical(chars=[]),
    "minilm + word 1-2-gram bag (dim 128)": _lexical(chars=[], dim=128),
    "minilm + word 1-3-gram bag (dim 64)": _lexical(chars=[], n=3),
    "word 1-2-gram bag alone (dim 64)": _bag_alone(chars=[]),
    "word 1-2 + char 2-5-gram bag alone (dim 64)": _bag_alone(chars=[2, 5], max_ngrams=4096),
    "minilm + word 1-2 + char 2-5-gram bag (dim 64, 200k n-grams, 4096 per text)": _lexical(
        max_features=200_000, max_ngrams=4096),
    "minilm + word 1-2 + char 2-5-gram bag (dim 128, 200k n-grams, 4096 per text)": _lexical(
        max_features=200_000, max_ngrams=4096, dim=128),
    "minilm + word 1-2 + char 2-5-gram bag (dim 64, 20k n-grams)": _lexical(max_features=20_000),
    "minilm + word 1-2 + char 3-5-gram bag (dim 64)": _lexical(chars=[3, 5]),
}

GROUPS: dict[str, tuple[str, str, dict[str, dict]]] = {
    "fortunes": ("fortunes", "default", {
        "default (minilm + n-grams, 128 tokens)": {},
        "minilm, 64 tokens": {"encoders": {"text": {**MINILM, "params": {"proj_dim": 256, "max_length": 64}}}},
        "minilm, 256 tokens": {"encoders": {"text": {**MINILM, "params": {"proj_dim": 256, "max_length": 256}}}},
        "head 256, dropout 0.3": {"head": {"hidden_dims": [256], "dropout": 0.3}},
        "fp32 training": {"train": {"precision": "32"}},
        "head linear (no hidden layer)": {"head": {"hidden_dims": []}},
        "weight decay 0.1": {"train": {"weight_decay": 0.1}},
        "LayerNorm + dropout 0.2 on the features": {"encoders": {"text": {**MINILM, "params": {"norm": True,
                                                                                                "dropout": 0.2}}}},
        "text bi-GRU from scratch": {"encoders": {"text": {"name": "gru", "params": {"bidirectional": True}}}},
        **NGRAM_CANDIDATES,
    }),
    "movies": ("movies", "default", {
        "default (minilm + n-grams, 128 tokens)": {},
        **NGRAM_CANDIDATES,
    }),
    "emoji": ("emoji", "default", {
        "default (colour images: efficientnet_lite0)": {},
        "head 256, dropout 0.3": {"head": {"hidden_dims": [256], "dropout": 0.3}},
        "head linear (no hidden layer)": {"head": {"hidden_dims": []}},
        "weight decay 0.1": {"train": {"weight_decay": 0.1}},
        "LayerNorm + dropout 0.2 on the features": {"encoders": {
            "text": {**MINILM, "params": {"norm": True, "dropout": 0.2}},
            "image": {**EFFICIENTNET, "params": {"norm": True, "dropout": 0.2}}}},
        "colour images: cnn from scratch": {"encoders": {"image": CNN}},
        "n-gram bag dim 32": _lexical(dim=32),
        "image features: dropout 0.2": {"encoders": {"image": {**EFFICIENTNET, "params": {"dropout": 0.2}}}},
        "batch size 32": {"train": {"batch_size": 32}},
        **NGRAM_CANDIDATES,
    }),
    "avdigits-sparse": ("avdigits-sparse", "default", {
        "default (grayscale images: cnn from scratch)": {},
        "grayscale images: efficientnet_lite0": {"encoders": {"image": EFFICIENTNET}},
    }),
    "scratch": ("emoji", "scratch", {
        "scratch (gru-bi + cnn, 4x4 pool, bf16, lr 1e-3)": {},
        "fp32 instead of bf16": {"train": {"precision": "32"}},
        "cnn global pool (1x1)": {"encoders": {"image": {"name": "cnn", "params": {"pool_grid": 1}}}},
        "cnn 2x2 pool": {"encoders": {"image": {"name": "cnn", "params": {"pool_grid": 2}}}},
        "text bow": {"encoders": {"text": {"name": "bow", "params": {"embed_dim": 128}}}},
        "text transformer": {"encoders": {"text": {"name": "transformer"}}},
        "text lstm": {"encoders": {"text": {"name": "lstm"}}},
        "image conv 28 px (seed branch)": {"encoders": {"image": {"name": "conv"}},
                                           "preprocess": {"image": {"size": 28}}},
        "modality dropout 0.3": {"modality_dropout": 0.3},
        "lr 2e-3": {"train": {"lr": 0.002}},
        "seed recipe (lstm + conv, adam, 10 epochs)": {
            "encoders": {"text": {"name": "lstm"}, "image": {"name": "conv"}}, "head": {"hidden_dims": []},
            "preprocess": {"image": {"size": 28, "normalize": False, "augment": False}},
            "train": {"optimizer": "adam", "schedule": "constant", "batch_size": 32, "max_epochs": 10,
                      "early_stopping": False, "restore_best": False, "weight_decay": 0.0, "precision": "32"}},
    }),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--group", action="append", choices=list(GROUPS), help="default: every group")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="candidate names to run")
    args = parser.parse_args()
    for group in args.group or list(GROUPS):
        table, preset, candidates = GROUPS[group]
        spec = build(table)
        rows = []
        with tempfile.TemporaryDirectory(prefix="mmfuse-cache-") as cache:
            for name, overrides in candidates.items():
                if args.only and name not in args.only:
                    continue
                start = time.perf_counter()
                p = Predictor(label=spec.label, preset=preset, config=overrides, label_sep=spec.label_sep,
                              threads=args.threads, cache_dir=cache, progress=False, verbose=False)
                p.fit(spec.folder / "train.csv", valid=spec.folder / "valid.csv")
                v = p.metrics_["valid"]
                first, second = ("micro_f1", "macro_f1") if "micro_f1" in v else ("accuracy", "macro_f1")
                rows.append((name, v[first], v[second], p.metrics_["epochs"], time.perf_counter() - start))
                print(f"{group}: {name:46s} {first} {v[first]:.4f}  {second} {v[second]:.4f}  "
                      f"epochs {rows[-1][3]:2d}  {rows[-1][4]:6.1f} s", flush=True)
        print(f"\n{group} ({table}, preset {preset}, validation split, seed 0, {args.threads} threads)\n\n"
              f"| candidate | valid {first} | valid {second} | epochs | fit time |\n|---|---|---|---|---|")
        for r in sorted(rows, key=lambda r: -r[1]):
            print(f"| {r[0]} | {r[1]:.4f} | {r[2]:.4f} | {r[3]} | {r[4]:.1f} s |")
        print()


if __name__ == "__main__":
    main()

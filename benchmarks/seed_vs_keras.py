"""The seed document's Keras model against mmfuse's ``seed`` and ``default`` presets on avdigits-hard.

    KERAS_BACKEND=torch python benchmarks/seed_vs_keras.py [--data data/avdigits-hard] [--seeds 0,1,2] [--threads 2]

The adapted seed: its text branch cannot embed float MFCCs, so LSTM(128) reads the (standardised, zero-padded,
masked) MFCC sequence directly; the image branch is Conv2D(32, 3x3, relu) -> MaxPool(2x2) -> Flatten on the 28x28
image scaled to [0, 1]; concatenate -> Dense(10, softmax); Adam (Keras defaults), batch 32, 10 epochs. mmfuse's
``seed`` preset is the same model in PyTorch. Same split, same thread count; evaluation time (the per-epoch test
scoring used for time-to-accuracy, and mmfuse's validation pass) is excluded from every time.

Prints final test accuracy, training wall time per epoch, and time-to-accuracy: the cumulative training time each
needs to first reach the Keras model's mean final test accuracy (mean ± spread over seeds).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import lightning as L  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from mmfuse import Predictor  # noqa: E402


def load_split(data: str, name: str) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    frame = pd.read_csv(f"{data}/{name}.csv")
    images = np.stack([np.asarray(Image.open(f"{data}/{p}"), dtype=np.float32) / 255 for p in frame["image"]])
    audio = [np.load(f"{data}/{p}") for p in frame["audio"]]
    return images[..., None], audio, frame["digit"].to_numpy()


def pad(clips: list[np.ndarray], mean: np.ndarray, std: np.ndarray, length: int) -> np.ndarray:
    out = np.zeros((len(clips), length, clips[0].shape[1]), dtype=np.float32)
    for i, clip in enumerate(clips):
        out[i, : len(clip)] = ((clip - mean) / std)[:length]
    return out


def keras_seed_run(data: str, seed: int) -> tuple[list[float], list[float]]:
    """Per-epoch training seconds and test accuracy of the Keras seed model."""
    import keras

    keras.utils.set_random_seed(seed)
    (img_tr, aud_tr, y_tr), (img_te, aud_te, y_te) = load_split(data, "train"), load_split(data, "test")
    frames = np.concatenate(aud_tr)
    mean, std = frames.mean(0), frames.std(0)
    length = max(len(c) for c in aud_tr)
    seq_tr, seq_te = pad(aud_tr, mean, std, length), pad(aud_te, mean, std, length)

    audio_in = keras.Input((None, seq_tr.shape[2]))
    lstm = keras.layers.LSTM(128)(keras.layers.Masking(0.0)(audio_in))
    image_in = keras.Input((28, 28, 1))
    conv = keras.layers.Flatten()(keras.layers.MaxPooling2D((2, 2))(keras.layers.Conv2D(32, (3, 3), activation="relu")(image_in)))
    out = keras.layers.Dense(10, activation="softmax")(keras.layers.concatenate([lstm, conv]))
    model = keras.Model([audio_in, image_in], out)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    seconds, accuracy = [], []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.start)
            pred = self.model.predict([seq_te, img_te], batch_size=256, verbose=0).argmax(1)
            accuracy.append(float((pred == y_te).mean()))

    model.fit([seq_tr, img_tr], y_tr, epochs=10, batch_size=32, verbose=0, callbacks=[Clock()])
    return seconds, accuracy


class EpochClock(L.Callback):
    """Training time per epoch (up to the validation pass) and test accuracy of the current weights."""

    def __init__(self, predictor: Predictor, test: str):
        self.predictor, self.test = predictor, test
        self.seconds: list[float] = []
        self.accuracy: list[float] = []

    def on_train_epoch_start(self, trainer, module):
        self.start = time.perf_counter()

    def on_validation_start(self, trainer, module):
        self.seconds.append(time.perf_counter() - self.start)

    def on_train_epoch_end(self, trainer, module):
        module.model.eval()
        self.predictor.model_ = module.model
        self.accuracy.append(self.predictor.evaluate(self.test)["accuracy"])
        module.model.train()


def mmfuse_run(data: str, preset: str, seed: int, threads: int) -> tuple[list[float], list[float], float]:
    predictor = Predictor(label="digit", preset=preset, seed=seed, threads=threads, progress=False, verbose=False)
    clock = EpochClock(predictor, f"{data}/test.csv")
    predictor.fit(f"{data}/train.csv", valid=f"{data}/valid.csv", callbacks=[clock])
    return clock.seconds, clock.accuracy, predictor.evaluate(f"{data}/test.csv")["accuracy"]


def time_to(target: float, seconds: list[float], accuracy: list[float]) -> float:
    reached = [i for i, a in enumerate(accuracy) if a >= target]
    return float(np.sum(seconds[: reached[0] + 1])) if reached else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/avdigits-hard")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    runs: dict[str, list[tuple[list[float], list[float], float]]] = {"keras seed": [], "mmfuse seed": [],
                                                                     "mmfuse default": []}
    for seed in seeds:
        seconds, accuracy = keras_seed_run(args.data, seed)
        runs["keras seed"].append((seconds, accuracy, accuracy[-1]))
        runs["mmfuse seed"].append(mmfuse_run(args.data, "seed", seed, args.threads))
        runs["mmfuse default"].append(mmfuse_run(args.data, "default", seed, args.threads))
        print(f"seed {seed}: " + ", ".join(f"{k} {v[-1][2]:.3f}" for k, v in runs.items()), flush=True)
    target = float(np.mean([r[2] for r in runs["keras seed"]]))
    keras_time = np.mean([time_to(target, r[0], r[1]) for r in runs["keras seed"]])
    print(f"\navdigits-hard, {args.threads} threads, seeds {args.seeds}; target = Keras seed mean final test "
          f"accuracy {target:.3f}\n")
    print("| model | final test accuracy | train time / epoch | epochs | time to reach target | vs Keras |")
    print("|---|---|---|---|---|---|")
    for name, rs in runs.items():
        final = [r[2] for r in rs]
        per_epoch = [np.mean(r[0]) for r in rs]
        reach = [time_to(target, r[0], r[1]) for r in rs]
        ratio = np.nanmean(reach) / keras_time
        print(f"| {name} | {np.mean(final):.3f} ± {np.std(final):.3f} | {np.mean(per_epoch):.2f} s | "
              f"{np.mean([len(r[0]) for r in rs]):.0f} | {np.nanmean(reach):.1f} s ({sum(np.isfinite(reach))}/{len(rs)} runs) "
              f"| {ratio:.2f}x |")


if __name__ == "__main__":
    main()

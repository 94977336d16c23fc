"""The folder the README's commands run in: cut-down files of the names the README uses.

An emoji package laid out as the npm one (``data/npm/emoji-datasource-google``: emoji.json and 64 px PNGs, real
emoji names, pictures drawn here in each category's colours), so ``mmfuse datasets export emoji`` reads it; its
export as ``train.csv`` / ``valid.csv`` / ``test.csv`` (columns image, name, category), ``new.csv`` (test without
its label), ``pairs.csv`` and ``items.csv`` for retrieval, and ``table.csv`` of ``#rrggbb`` colours for the plugin.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from mmfuse.datasets import emoji

NAMES = {
    "Smileys & Emotion": ["grinning face", "smiling face with halo", "winking face", "face with tears of joy",
                          "crying face", "angry face", "sleeping face", "thinking face", "red heart", "blue heart",
                          "green heart", "yellow heart", "broken heart", "sparkling heart", "face with monocle",
                          "zany face", "smiling face with sunglasses", "pouting face", "yawning face", "kiss mark"],
    "Food & Drink": ["red apple", "green apple", "banana", "grapes", "pizza", "hamburger", "hot dog", "taco",
                     "bread", "cheese wedge", "hot beverage", "birthday", "cherries", "strawberry", "watermelon",
                     "carrot", "ear of corn", "croissant", "cooked rice", "doughnut"],
    "Animals & Nature": ["dog face", "cat face", "mouse face", "rabbit face", "fox", "bear", "panda", "tiger face",
                         "sunflower", "rose", "maple leaf", "evergreen tree", "frog", "monkey face", "koala", "penguin",
                         "bird", "turtle", "spouting whale", "cactus"],
}
COLOURS = {"Smileys & Emotion": (250, 200, 40), "Food & Drink": (220, 60, 40), "Animals & Nature": (60, 160, 70)}


def emoji_package(folder: Path, seed: int = 0) -> Path:
    """An emoji package as npm lays it out, under ``folder``; returns its path."""
    rng = np.random.default_rng(seed)
    images = folder / "img" / "google" / "64"
    images.mkdir(parents=True)
    entries = []
    for c, (category, names) in enumerate(NAMES.items()):
        for i, name in enumerate(names):
            picture = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
            draw = ImageDraw.Draw(picture)
            colour = tuple(int(v) for v in np.clip(np.array(COLOURS[category]) + rng.integers(-40, 40, 3), 0, 255))
            box = [int(v) for v in rng.integers(4, 16, 2)] + [int(v) for v in rng.integers(48, 60, 2)]
            (draw.ellipse if c != 1 else draw.rectangle)(box, fill=(*colour, 255), outline=(30, 30, 30, 255))
            file = f"{c:02x}{i:02x}.png"
            picture.save(images / file)
            entries.append({"name": name.upper(), "image": file, "category": category, "has_img_google": True})
    (folder / "emoji.json").write_text(json.dumps(entries))
    return folder


def colour_table(n: int = 60, seed: int = 0) -> pd.DataFrame:
    """``#rrggbb`` colours labelled by whether red is their strongest channel."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (n, 3))
    return pd.DataFrame({"colour": ["#%02x%02x%02x" % tuple(v) for v in rgb],
                         "y": (rgb[:, 0] > rgb[:, 1:].max(1)).astype(int)})


def readme_folder(folder: Path) -> Path:
    """Every file the README's commands read, under ``folder``."""
    package = emoji_package(folder / "data" / "npm" / "emoji-datasource-google")
    paths = emoji.export(folder, source=package)
    test = pd.read_csv(paths["test"])
    test.drop(columns=["category"]).to_csv(folder / "new.csv", index=False)
    pd.read_csv(paths["train"]).to_csv(folder / "pairs.csv", index=False)
    test.to_csv(folder / "items.csv", index=False)
    colour_table().to_csv(folder / "table.csv", index=False)
    return folder

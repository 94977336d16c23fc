"""Bundles are JSON + safetensors, verified on load, never unpickled."""

import json
import warnings

import pytest

from mmfuse import Predictor
from mmfuse.errors import BundleError
from mmfuse.io.bundle import FORMAT_VERSION
from forge import edit_json

FAST = {"preset": "fast", "max_epochs": 1, "threads": 2, "progress": False, "verbose": False}


@pytest.fixture
def bundle(table_dir, tmp_path):
    return Predictor(label="y", **FAST).fit(table_dir / "train.csv").save(tmp_path / "model")


def edit_config(bundle, **changes):
    edit_json(bundle, "config.json", lambda config: config.update(changes))


def test_bundle_files_are_json(bundle):
    for name in ("config.json", "processors.json", "metrics.json", "data_report.json"):
        json.loads((bundle / name).read_text())
    config = json.loads((bundle / "config.json").read_text())
    assert config["format"] == "mmfuse-bundle" and config["format_version"] == FORMAT_VERSION
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert set(manifest) == {f.name for f in bundle.iterdir()} - {"manifest.json"}  # config.json covered too
    assert not list(bundle.glob("*.pt")) and not list(bundle.glob("*.pkl")) and not list(bundle.glob("*.ckpt"))


def test_tampered_weights_fail_checksum(bundle):
    data = bytearray((bundle / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (bundle / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="does not match the checksum"):
        Predictor.load(bundle)


def test_unknown_format_version_fails(bundle):
    edit_config(bundle, format_version=99)
    with pytest.raises(BundleError, match="format version 99"):
        Predictor.load(bundle)


def test_other_mmfuse_version_only_warns(bundle):
    edit_config(bundle, mmfuse_version="0.0.1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Predictor.load(bundle, verbose=False)
    assert any("saved by mmfuse 0.0.1" in str(w.message) for w in caught)


def test_incomplete_or_missing_bundle(bundle, tmp_path):
    (bundle / "processors.json").unlink()
    with pytest.raises(BundleError, match="missing processors.json"):
        Predictor.load(bundle)
    with pytest.raises(BundleError, match="not found"):
        Predictor.load(tmp_path / "nowhere")

"""A saved model is a folder of JSON + safetensors, sealed by checksums; nothing is ever unpickled.

    config.json        format name/version, mmfuse version, label, task state, columns, model config, the input
                       plan and the plugin modules it needs (format 4 on), and the SHA-256 of manifest.json (and
                       of the weights)
    manifest.json      the SHA-256 of every other file of the folder (format 3 on)
    processors.json    per input: processor kind, constructor params and fitted state (vocabularies, image mean/std,
                       category ids, ...); format 1 kept one flat mapping per input (converted on load)
    model.safetensors  the weights
    metrics.json       validation (and later test) metrics                       } optional: may be absent,
    data_report.json   every skipped or masked row per split                     } but not changed
    training_log.csv, learning_curves.png   per-epoch metrics and their plot     }
    portfolio.json, portfolio.safetensors   the cheap members, ensemble weights and calibration (format 5 on;
                                            required when config.json names ``members``: ``io.members``)

A bundle is written to a hidden staging folder beside its destination and renamed into place (``staging``), so a
killed save never leaves a half-written or mixed model. Checksums catch accidents and folders mixed from two fits, not
deliberate tampering: nothing is signed.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from ..errors import BundleError
from ..version import __version__
from .hashing import sha256_file
from .staging import staged_folder

FORMAT_NAME = "mmfuse-bundle"
FORMAT_VERSION = 5  # 5: portfolio members (portfolio.json / .safetensors); 4: the input plan and plugin modules
READABLE_VERSIONS = (1, 2, 3, 4, 5)
REQUIRED = ("config.json", "processors.json", "model.safetensors")
SEALS = ("config.json", "manifest.json")  # the files the manifest does not list (config seals the manifest)


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def save_bundle(path: str | Path, config: dict[str, Any], processors: dict[str, Any], weights: dict[str, Tensor],
                metrics: dict[str, Any], data_report: dict[str, Any], history: list[dict[str, float]],
                extras: Callable[[Path], None] | None = None) -> Path:
    """Write a sealed bundle folder; ``extras(folder)`` may add files (plots) before the folder is sealed.

    An existing bundle at ``path`` is replaced whole; any other non-empty folder there is refused.
    """
    out = Path(path)
    if out.exists() and not is_bundle_folder(out):
        raise BundleError(f"{out} exists and is not an mmfuse model folder: choose another output folder")
    with staged_folder(out) as staging:
        save_file({k: v.detach().contiguous().cpu() for k, v in weights.items()}, str(staging / "model.safetensors"))
        write_json(staging / "processors.json", processors)
        write_json(staging / "metrics.json", metrics)
        write_json(staging / "data_report.json", data_report)
        pd.DataFrame(history).to_csv(staging / "training_log.csv", index=False)
        if extras:
            extras(staging)
        manifest = {f.name: sha256_file(f) for f in sorted(staging.iterdir()) if f.name not in SEALS}
        write_json(staging / "manifest.json", manifest)
        header = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "mmfuse_version": __version__,
                  "weights_sha256": manifest["model.safetensors"],
                  "manifest_sha256": sha256_file(staging / "manifest.json")}
        write_json(staging / "config.json", {**header, **config})
    return out


def is_bundle_folder(path: str | Path) -> bool:
    """Whether ``path`` is an empty folder or one holding an mmfuse model's config.json (safe to replace)."""
    folder = Path(path)
    if not folder.is_dir():
        return False
    if not any(folder.iterdir()):
        return True
    try:
        return json.loads((folder / "config.json").read_text()).get("format") == FORMAT_NAME
    except (OSError, ValueError, AttributeError):
        return False


def damaged(folder: Path, what: str) -> BundleError:
    return BundleError(f"model folder is damaged: {folder}: {what}")


def read_json(path: Path, folder: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise damaged(folder, f"{path.name} is not readable JSON ({err})") from None


def read_bundle_config(path: str | Path) -> dict[str, Any]:
    """config.json of a bundle, with its format checked (no weights read)."""
    folder = Path(path)
    if not folder.is_dir():
        raise BundleError(f"model folder not found: {folder}")
    missing = [name for name in REQUIRED if not (folder / name).is_file()]
    if missing:
        raise BundleError(f"{folder} is not a complete mmfuse model: missing {', '.join(missing)}")
    config = read_json(folder / "config.json", folder)
    if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
        raise BundleError(f"{folder} is not an mmfuse model (config.json has no 'format: {FORMAT_NAME}')")
    if config.get("format_version") not in READABLE_VERSIONS:
        raise BundleError(f"{folder} uses bundle format version {config.get('format_version')!r}; this mmfuse "
                          f"({__version__}) reads versions {', '.join(map(str, READABLE_VERSIONS))}")
    if config.get("mmfuse_version") != __version__:
        warnings.warn(f"{folder} was saved by mmfuse {config.get('mmfuse_version')}, this is {__version__}",
                      stacklevel=2)
    return config


def verify_bundle(folder: Path, config: dict[str, Any]) -> None:
    """Refuse a folder whose files differ from what was saved: the manifest's own checksum (in config.json), then
    every file it lists (required ones must be there; optional ones may be absent but not changed). Format 2 and 1
    bundles had only the weights' checksum."""
    if config["format_version"] < 3:
        if sha256_file(folder / "model.safetensors") != config.get("weights_sha256"):
            raise BundleError(f"{folder / 'model.safetensors'} does not match the checksum in config.json "
                              "(the file was changed or is corrupt)")
        return
    if not (folder / "manifest.json").is_file():
        raise damaged(folder, "manifest.json is missing")
    if sha256_file(folder / "manifest.json") != config.get("manifest_sha256"):
        raise damaged(folder, "manifest.json does not match the checksum in config.json (changed, or from another fit)")
    manifest = read_json(folder / "manifest.json", folder)
    for name in REQUIRED:
        if name not in SEALS and name not in manifest:
            raise damaged(folder, f"manifest.json does not list {name}")
    for name, digest in manifest.items():
        file = folder / name
        if not file.is_file():
            if name in REQUIRED:
                raise damaged(folder, f"{name} is missing")
            continue
        if sha256_file(file) != digest:
            raise damaged(folder, f"{name} does not match the checksum in manifest.json (changed since it was "
                                  "saved, corrupt, or from another fit)")


@dataclass
class BundleContents:
    format_version: int
    config: dict[str, Any]
    processors: dict[str, Any]
    weights: dict[str, Tensor]
    metrics: dict[str, Any]
    data_report: dict[str, Any]
    history: list[dict[str, float]]


def _optional_json(path: Path, folder: Path, default: Any) -> Any:
    return read_json(path, folder) if path.is_file() else default


def _history(path: Path, folder: Path) -> list[dict[str, float]]:
    if not path.is_file() or path.stat().st_size <= 1:
        return []
    try:
        return pd.read_csv(path).to_dict("records")
    except (ValueError, UnicodeDecodeError) as err:
        raise damaged(folder, f"{path.name} is not a readable CSV ({err})") from None


def load_bundle(path: str | Path) -> BundleContents:
    """Read and verify a bundle (format version, checksums, readable files)."""
    folder = Path(path)
    config = read_bundle_config(folder)
    verify_bundle(folder, config)
    try:
        weights = load_file(str(folder / "model.safetensors"))
    except (SafetensorError, OSError, ValueError) as err:
        raise damaged(folder, f"model.safetensors is not a readable safetensors file ({err})") from None
    return BundleContents(config["format_version"], config, read_json(folder / "processors.json", folder), weights,
                          _optional_json(folder / "metrics.json", folder, {}),
                          _optional_json(folder / "data_report.json", folder, {}),
                          _history(folder / "training_log.csv", folder))


def load_weights(model: nn.Module, weights: dict[str, Tensor], path: str | Path) -> None:
    """Put a bundle's weights into the model its config rebuilt (eval mode); a mismatch is a clear BundleError."""
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        raise BundleError(f"{path}: the weights do not fit the model its config describes (saved by another "
                          f"mmfuse version?): {str(err).splitlines()[0]}") from None
    model.eval()

"""A saved model is a folder of JSON + safetensors, sealed by checksums; nothing is ever unpickled.

    config.json        format name/version, mmfuse version, label, task state, columns, model config, the input
                       plan and the plugin modules it needs (format 4 on)
    manifest.json      the SHA-256 of every other file of the folder (format 3 on; config.json too from format 6)
    processors.json    per input: processor kind, constructor params and fitted state (vocabularies, image mean/std,
                       category ids, ...); format 1 kept one flat mapping per input (converted on load)
    model.safetensors  the weights
    metrics.json       validation (and later test) metrics                       } optional: may be absent,
    data_report.json   every skipped or masked row per split                     } but not changed
    training_log.csv, learning_curves.png   per-epoch metrics and their plot     }
    portfolio.json, portfolio.safetensors   the cheap members, ensemble weights and calibration (format 5 on;
                                            required when config.json names ``members``: ``io.members``)

A bundle is written to a hidden staging folder beside its destination and exchanged into place (``staging``), so a
killed save never leaves a half-written or mixed model. Every JSON file is read through the bounded parser (size and
depth checked first). Checksums catch accidents and folders mixed from two fits, not deliberate tampering: nothing
is signed, so loading never trusts a file's content either (a model's plugins are imported only when the user
allows them, ``plugins.require_plugins``; LightGBM's text is checked before LightGBM parses it,
``portfolio.lightgbm_text``). Formats 3-5 did not cover config.json: they load with a warning; saving them again
seals them as format 6.
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
from .bounded_json import CONFIG_BYTES, MODEL_BYTES, REPORT_BYTES, SMALL_BYTES, read_file
from .hashing import sha256_file
from .staging import staged_folder

FORMAT_NAME = "mmfuse-bundle"
FORMAT_VERSION = 6  # 6: the manifest covers config.json; 5: portfolio members; 4: the input plan and plugin modules
READABLE_VERSIONS = (1, 2, 3, 4, 5, 6)
REQUIRED = ("config.json", "processors.json", "model.safetensors")
PORTFOLIO_FILES = ("portfolio.json", "portfolio.safetensors")
JSON_LIMITS = {"config.json": CONFIG_BYTES, "manifest.json": SMALL_BYTES, "processors.json": MODEL_BYTES,
               "metrics.json": REPORT_BYTES, "data_report.json": REPORT_BYTES, "portfolio.json": MODEL_BYTES}


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
    try:
        _write_bundle(out, config, processors, weights, metrics, data_report, history, extras)
    except (OSError, SafetensorError) as err:  # a full disk, a quota, a folder that became read-only
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise BundleError(f"could not save the model to {out} ({reason}): what was there is unchanged") from None
    return out


def _write_bundle(out: Path, config: dict[str, Any], processors: dict[str, Any], weights: dict[str, Tensor],
                  metrics: dict[str, Any], data_report: dict[str, Any], history: list[dict[str, float]],
                  extras: Callable[[Path], None] | None) -> None:
    with staged_folder(out) as staging:
        save_file({k: v.detach().contiguous().cpu() for k, v in weights.items()}, str(staging / "model.safetensors"))
        write_json(staging / "processors.json", processors)
        write_json(staging / "metrics.json", metrics)
        write_json(staging / "data_report.json", data_report)
        pd.DataFrame(history).to_csv(staging / "training_log.csv", index=False)
        if extras:
            extras(staging)
        header = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "mmfuse_version": __version__}
        write_json(staging / "config.json", {**header, **config})
        write_json(staging / "manifest.json", {f.name: sha256_file(f) for f in sorted(staging.iterdir())})


def is_bundle_folder(path: str | Path) -> bool:
    """Whether ``path`` is an empty folder or one holding an mmfuse model's config.json (safe to replace)."""
    folder = Path(path)
    if not folder.is_dir():
        return False
    if not any(folder.iterdir()):
        return True
    try:
        return read_file(folder / "config.json", CONFIG_BYTES).get("format") == FORMAT_NAME
    except (OSError, ValueError, AttributeError):
        return False


def damaged(folder: Path, what: str) -> BundleError:
    return BundleError(f"model folder is damaged: {folder}: {what}")


def read_json(path: Path, folder: Path) -> Any:
    """A bundle's JSON file through the bounded parser (its size limit in ``JSON_LIMITS``)."""
    try:
        return read_file(path, JSON_LIMITS.get(path.name, SMALL_BYTES))
    except (OSError, ValueError) as err:
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
    if 3 <= config["format_version"] < 6:
        warnings.warn(f"{folder} uses bundle format {config['format_version']}, whose checksums do not cover "
                      "config.json: load it and save it again to seal it as format 6", stacklevel=2)
    if config.get("mmfuse_version") != __version__:
        warnings.warn(f"{folder} was saved by mmfuse {config.get('mmfuse_version')}, this is {__version__}",
                      stacklevel=2)
    return config


def verify_bundle(folder: Path, config: dict[str, Any]) -> None:
    """Refuse a folder whose files differ from what was saved: every file the manifest lists (config.json and the
    other required ones must be there; optional ones may be absent but not changed), and files the config does not
    account for (portfolio files without members). Formats 3-5 sealed the manifest in config.json instead; 2 and 1
    had only the weights' checksum."""
    if config["format_version"] < 3:
        if sha256_file(folder / "model.safetensors") != config.get("weights_sha256"):
            raise BundleError(f"{folder / 'model.safetensors'} does not match the checksum in config.json "
                              "(the file was changed or is corrupt)")
        return
    if not (folder / "manifest.json").is_file():
        raise damaged(folder, "manifest.json is missing")
    sealed = config["format_version"] >= 6
    if not sealed and sha256_file(folder / "manifest.json") != config.get("manifest_sha256"):
        raise damaged(folder, "manifest.json does not match the checksum in config.json (changed, or from another fit)")
    manifest = read_json(folder / "manifest.json", folder)
    if not isinstance(manifest, dict) or not all(isinstance(v, str) for v in manifest.values()):
        raise damaged(folder, "manifest.json is not a mapping of file names to checksums")
    for name in REQUIRED:
        if (sealed or name != "config.json") and name not in manifest:
            raise damaged(folder, f"manifest.json does not list {name}")
    if "members" not in config and any(name in manifest for name in PORTFOLIO_FILES):
        raise damaged(folder, "manifest.json lists portfolio files but config.json names no members (edited?)")
    for name, digest in manifest.items():
        if Path(name).name != name or name == "manifest.json":
            raise damaged(folder, f"manifest.json lists {name!r}, not a file of the folder")
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

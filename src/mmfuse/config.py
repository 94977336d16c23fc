"""Configuration as pydantic models: presets (``presets/*.yaml``), ``--config`` files and CLI flags all land here.

A config says how to build and train a model; it never holds data-dependent state (vocabularies, class names):
that lives in the fitted processors and the task, saved beside it in the bundle.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ConfigError

Modality = Literal["text", "image", "audio", "sequence", "numeric", "categorical", "ignore"]
MODALITIES: tuple[str, ...] = ("text", "image", "audio", "sequence", "numeric", "categorical", "ignore")
InputKind = Literal["text", "image", "audio", "sequence", "tabular"]
TaskType = Literal["binary", "multiclass", "multilabel", "regression"]
BadRowPolicy = Literal["error", "skip", "mask"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EncoderCfg(_Strict):
    """An encoder by registry name plus its constructor arguments."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class FusionCfg(_Strict):
    name: str = "concat"
    params: dict[str, Any] = Field(default_factory=dict)


class HeadCfg(_Strict):
    hidden_dims: list[int] = Field(default_factory=lambda: [128])
    dropout: float = Field(0.1, ge=0, lt=1)
    activation: Literal["relu", "gelu", "silu", "tanh"] = "gelu"


class TextCfg(_Strict):
    tokenizer: Literal["word", "wordpiece", "bpe"] = "word"
    vocab_size: int = Field(10000, ge=10)
    max_length: int = Field(64, ge=1)
    lowercase: bool = True


class ImageCfg(_Strict):
    size: int = Field(64, ge=8)
    channels: Literal["auto", 1, 3] = "auto"
    normalize: bool = True
    augment: bool = True


class AudioCfg(_Strict):
    sample_rate: int = Field(16000, ge=1000)
    max_seconds: float = Field(2.0, gt=0)
    n_mels: int = Field(64, ge=4)
    n_fft: int = Field(400, ge=16)
    hop: int = Field(160, ge=1)
    augment: bool = True


class SequenceCfg(_Strict):
    max_length: int = Field(256, ge=1)


class PreprocessCfg(_Strict):
    text: TextCfg = Field(default_factory=TextCfg)
    image: ImageCfg = Field(default_factory=ImageCfg)
    audio: AudioCfg = Field(default_factory=AudioCfg)
    sequence: SequenceCfg = Field(default_factory=SequenceCfg)


class TrainCfg(_Strict):
    optimizer: Literal["adamw", "adam"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    batch_size: int = Field(64, ge=1)
    max_epochs: int = Field(30, ge=1)
    schedule: Literal["cosine", "onecycle", "constant"] = "cosine"
    early_stopping: bool = True
    patience: int = Field(5, ge=1)
    restore_best: bool = True
    precision: Literal["32", "bf16"] = "32"  # bf16: mixed-precision autocast, for training and prediction
    time_limit: float | None = Field(None, gt=0, description="seconds")
    seed: int = 0
    threads: int | None = Field(None, ge=1)
    valid_fraction: float = Field(0.2, gt=0, lt=1)


class RetrievalCfg(_Strict):
    """Two-tower retrieval: the shared embedding width, CLIP's initial temperature (learned), and optionally a
    locked tower (LiT, Zhai et al. 2022): the tower of that modality is used as is and its width is the shared
    space; only the other tower projects into it."""

    embed_dim: int = Field(256, ge=2)
    temperature: float = Field(0.07, gt=0)
    locked: Literal["text", "image", "audio", "sequence"] | None = None


class ModelConfig(_Strict):
    """Everything needed to rebuild and retrain a model, minus the data."""

    encoders: dict[InputKind, EncoderCfg]
    column_encoders: dict[str, EncoderCfg] = Field(default_factory=dict)
    fusion: FusionCfg = Field(default_factory=FusionCfg)
    modality_dropout: float = Field(0.0, ge=0, lt=1)
    head: HeadCfg = Field(default_factory=HeadCfg)
    retrieval: RetrievalCfg = Field(default_factory=RetrievalCfg)
    preprocess: PreprocessCfg = Field(default_factory=PreprocessCfg)
    train: TrainCfg = Field(default_factory=TrainCfg)


def list_presets() -> list[str]:
    """Names of the built-in presets."""
    return sorted(p.name[: -len(".yaml")] for p in resources.files("mmfuse.presets").iterdir() if p.name.endswith(".yaml"))


def _read_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge mappings recursively; a component entry naming a different ``name`` replaces the old one whole."""
    merged = dict(base)
    for key, value in override.items():
        old = merged.get(key)
        same_component = isinstance(old, dict) and isinstance(value, dict) and value.get("name", old.get("name")) == old.get("name")
        merged[key] = _deep_merge(old, value) if same_component else value
    return merged


def encoder_spec(name: str) -> dict[str, Any]:
    """An encoder choice from the command line: ``gru``, or ``text_hf:/path/to/model`` (a name with its source)."""
    if ":" in name:
        base, source = name.split(":", 1)
        return {"name": base, "params": {"source": source}}
    return {"name": name}


def setting_overrides(train: dict[str, Any], encoders: dict[str, str] | None) -> dict[str, Any]:
    """Config overrides from explicit settings: the training values given (None = the preset's), and encoder
    choices keyed by modality (text / image / audio / sequence / tabular: every input of that kind) or column."""
    overrides: dict[str, Any] = {}
    given = {k: v for k, v in train.items() if v is not None}
    if given:
        overrides["train"] = given
    for key, name in (encoders or {}).items():
        section = "encoders" if key in ("text", "image", "audio", "sequence", "tabular") else "column_encoders"
        overrides.setdefault(section, {})[key] = encoder_spec(name)
    return overrides


def validate_config(data: dict[str, Any], source: str) -> ModelConfig:
    """Validate a raw mapping; errors name the field path and what is allowed."""
    try:
        return ModelConfig.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
        raise ConfigError(f"{source}: {problems}") from None


def load_config(preset: str = "default", config_file: "str | Path | dict[str, Any] | None" = None,
                overrides: dict[str, Any] | None = None) -> ModelConfig:
    """A preset, then a user's YAML file (or mapping), then explicit overrides, each merged over the previous."""
    if preset not in list_presets():
        raise ConfigError(f"unknown preset {preset!r}; choose from: {', '.join(list_presets())}")
    data = _read_yaml(resources.files("mmfuse.presets").joinpath(f"{preset}.yaml").read_text(), f"preset {preset}")
    source = f"preset {preset}"
    if isinstance(config_file, dict):
        data, source = _deep_merge(data, config_file), "config"
    elif config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        data = _deep_merge(data, _read_yaml(path.read_text(), str(path)))
        source = str(path)
    if overrides:
        data = _deep_merge(data, overrides)
    return validate_config(data, source)

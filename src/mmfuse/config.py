"""Configuration as pydantic models: presets (``presets/*.yaml``), ``--config`` files and CLI flags all land here.

A config says how to build and train a model; it never holds data-dependent state (vocabularies, class names):
that lives in the fitted processors and the task, saved beside it in the bundle.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError
from .registry import ENCODERS, FUSIONS, MEMBERS, MODALITIES, PROCESSORS, Registry


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # a number is finite: nan passes every bound


def _input_kinds() -> dict[str, Any]:
    """Input kind (text, image, ..., tabular) -> the registered modality spec that defines it."""
    if not MODALITIES.names():
        raise RuntimeError("no modality plugins are registered: import mmfuse.modalities (or mmfuse.estimators) first")
    return {MODALITIES.get(m).input: MODALITIES.get(m) for m in MODALITIES.names()}


def input_kinds() -> list[str]:
    """The registered input kinds (text, image, ..., tabular, a plugin's), sorted."""
    return sorted(_input_kinds())


def check_input_kind(kind: str) -> str:
    kinds = _input_kinds()
    if kind not in kinds:
        raise ValueError(f"unknown input kind {kind!r}; choose from: {', '.join(sorted(kinds))}")
    return kind


def _registered(registry: Registry, name: str) -> str:
    if name not in registry:
        raise ValueError(f"unknown {registry.what} {name!r}; choose from: {', '.join(registry.names())}")
    return name


def _check_encoder_reads(encoder: str, name: str, kind: str) -> None:
    """An encoder registered for another input kind than ``kind`` (of input ``name``) is a ValueError."""
    reads = ENCODERS.meta(encoder)["modality"]
    if reads != kind:
        raise ValueError(f"encoder {encoder!r} is for {reads} inputs, but {name!r} is {kind}; {kind} encoders: "
                         f"{', '.join(ENCODERS.names(modality=kind))}")


class EncoderCfg(_Strict):
    """An encoder by registry name plus its constructor arguments."""

    name: Annotated[str, AfterValidator(lambda name: _registered(ENCODERS, name))]
    params: dict[str, Any] = Field(default_factory=dict)


class EncoderRule(_Strict):
    """A preset's data-dependent encoder choice: columns of input kind ``input`` whose traits (``ColumnInfo.traits``)
    equal every value in ``when`` get ``encoder``. E.g. grayscale images -> a from-scratch CNN::

        rules: [{input: image, when: {colour: false}, encoder: {name: cnn}}]
    """

    input: Annotated[str, AfterValidator(lambda kind: check_input_kind(kind))]
    when: dict[str, Any] = Field(default_factory=dict)
    encoder: EncoderCfg

    @model_validator(mode="after")
    def _encoder_reads_input(self) -> "EncoderRule":
        _check_encoder_reads(self.encoder.name, self.input, self.input)
        return self

    def matches(self, kind: str, traits: dict[str, Any]) -> bool:
        return kind == self.input and all(traits.get(k) == v for k, v in self.when.items())

    def describe(self) -> str:
        return f"rule: {self.input} with " + ", ".join(f"{k}={v}" for k, v in self.when.items())


class FusionCfg(_Strict):
    name: Annotated[str, AfterValidator(lambda name: _registered(FUSIONS, name))] = "concat"
    params: dict[str, Any] = Field(default_factory=dict)


class HeadCfg(_Strict):
    hidden_dims: list[int] = Field(default_factory=lambda: [128])
    dropout: float = Field(0.1, ge=0, lt=1)
    activation: Literal["relu", "gelu", "silu", "tanh"] = "gelu"


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
    precision: Literal["32", "bf16", "16"] = "32"  # bf16 / 16 (float16, GPU only): mixed-precision autocast, for
    # training and prediction
    # seconds the network alone may train, within the fit's own time limit (older configs name it time_limit)
    network_time_limit: float | None = Field(None, gt=0, description="seconds",
                                             validation_alias=AliasChoices("network_time_limit", "time_limit"))
    seed: int = Field(0, ge=0, le=2**32 - 1)  # what the random number generators take
    threads: int | None = Field(None, ge=1)
    valid_fraction: float = Field(0.2, gt=0, lt=1)
    devices: int = Field(1, ge=1)          # processes (CPU) or GPUs per node; > 1 trains with DDP
    strategy: Literal["auto", "ddp"] = "auto"
    num_nodes: int = Field(1, ge=1)


class RetrievalCfg(_Strict):
    """Two-tower retrieval: the shared embedding width, CLIP's initial temperature (learned), and optionally a
    locked tower (LiT, Zhai et al. 2022): the tower of that input kind is used as is and its width is the shared
    space; only the other tower projects into it."""

    embed_dim: int = Field(256, ge=2)
    temperature: float = Field(0.07, gt=0)
    locked: str | None = None

    @field_validator("locked")
    @classmethod
    def _known(cls, kind: str | None) -> str | None:
        return None if kind is None else check_input_kind(kind)


def _member(name: str) -> str:
    if name not in MEMBERS:
        raise ValueError(f"unknown portfolio member {name!r}; choose from: {', '.join(member_names())}")
    return name


def member_names() -> list[str]:
    """The members a portfolio may hold (``registry.MEMBERS``: the fused network is ``network``)."""
    return MEMBERS.names()


class PortfolioCfg(_Strict):
    """Which learners a fit trains (the fused network is ``network``; the others: ``mmfuse.portfolio``), and how
    their validation outputs are combined: greedy ensemble selection with replacement over ``rounds`` rounds, then
    temperature scaling (``calibrate``); ``refit``: the members the ensemble reads then learn again from the training
    and validation rows together (None: when the validation rows were held out of the training table, not when a
    validation table was given; true: both; false: never)."""

    members: list[Annotated[str, AfterValidator(_member)]] = Field(default_factory=lambda: ["network"], min_length=1)
    rounds: int = Field(25, ge=1)
    calibrate: bool = True
    refit: bool | None = None
    probe_epochs: int = Field(3, ge=0)  # the network's epochs before its probe (``portfolio.probe``); 0: none
    probe_rows: int = Field(8_000, ge=0)  # from this many labelled rows, frozen text features are probed on a sample
    # first (``estimators.backbone_probe``); 0: never


class ModelConfig(_Strict):
    """Everything needed to rebuild and retrain a model, minus the data.

    ``encoders`` and ``preprocess`` are keyed by input kind (text, image, audio, sequence, tabular, or one a plugin
    registers); an input kind a preset leaves out gets its modality plugin's default encoder and settings.
    ``preprocess`` settings are checked against the plugin processor's ``Params`` model. ``rules`` (first match
    wins) pick an input's encoder from its column's traits ahead of ``encoders``; ``for_columns`` writes what they
    picked into ``column_encoders``, so a saved config names every input's encoder.
    """

    encoders: dict[str, EncoderCfg] = Field(default_factory=dict)
    rules: list[EncoderRule] = Field(default_factory=list)
    column_encoders: dict[str, EncoderCfg] = Field(default_factory=dict)
    fusion: FusionCfg = Field(default_factory=FusionCfg)
    modality_dropout: float = Field(0.0, ge=0, lt=1)
    set_pooling: Literal["mean", "attention"] = "mean"  # how a set input's elements are pooled (nn/sets.py)
    head: HeadCfg = Field(default_factory=HeadCfg)
    retrieval: RetrievalCfg = Field(default_factory=RetrievalCfg)
    preprocess: dict[str, dict[str, Any]] = Field(default_factory=dict)
    train: TrainCfg = Field(default_factory=TrainCfg)
    portfolio: PortfolioCfg = Field(default_factory=PortfolioCfg)

    @field_validator("encoders")
    @classmethod
    def _encoder_kinds(cls, encoders: dict[str, EncoderCfg]) -> dict[str, EncoderCfg]:
        for kind, enc in encoders.items():
            check_input_kind(kind)
            _check_encoder_reads(enc.name, kind, kind)
        return encoders

    @field_validator("preprocess")
    @classmethod
    def _preprocess_settings(cls, sections: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        kinds = _input_kinds()
        checked = {}
        for kind, settings in sections.items():
            check_input_kind(kind)
            params = PROCESSORS.get(kinds[kind].processor).Params
            try:
                checked[kind] = params.model_validate(settings).model_dump(exclude_unset=True)
            except ValidationError as err:
                problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
                raise ValueError(f"{kind}: {problems}") from None
        return checked

    def encoder_for(self, name: str, kind: str) -> EncoderCfg:
        """The encoder for one input: a per-column choice, else the one for its kind, else the plugin's default."""
        return self.choose_encoder(name, kind)[0]

    def choose_encoder(self, name: str, kind: str, traits: dict[str, Any] | None = None) -> tuple[EncoderCfg, str]:
        """(encoder, why) for one input: the rule that picks it (``rule_for``), else a per-column choice, else the
        one for its kind, else the plugin's default."""
        rule = self.rule_for(name, kind, traits)
        if rule is not None:
            chosen, why = rule.encoder, rule.describe()
        elif name in self.column_encoders:
            chosen, why = self.column_encoders[name], "column setting"
        elif kind in self.encoders:
            chosen, why = self.encoders[kind], f"{kind} setting"
        else:
            chosen, why = EncoderCfg(name=_input_kinds()[check_input_kind(kind)].default_encoder), "plugin default"
        try:
            _check_encoder_reads(chosen.name, name, kind)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        return chosen, why

    def rule_for(self, name: str, kind: str, traits: dict[str, Any] | None) -> EncoderRule | None:
        """The first rule matching an input's column traits, unless a per-column encoder other than the rule's
        is set (by the user; ``for_columns`` writes the rule's own)."""
        rule = next((r for r in self.rules if r.matches(kind, traits)), None) if traits is not None else None
        overridden = name in self.column_encoders and rule is not None and self.column_encoders[name] != rule.encoder
        return None if overridden else rule

    def for_columns(self, inputs: dict[str, tuple[str, dict[str, Any]]]) -> "ModelConfig":
        """The config with the encoder each rule picks for these inputs (name -> (kind, column traits)) written
        into ``column_encoders``."""
        picked = {name: rule.encoder for name, (kind, traits) in inputs.items()
                  if (rule := self.rule_for(name, kind, traits)) is not None}
        return self.model_copy(update={"column_encoders": {**self.column_encoders, **picked}}, deep=True)


def list_presets() -> list[str]:
    """Names of the built-in presets."""
    return sorted(p.name[: -len(".yaml")] for p in resources.files("mmfuse.presets").iterdir() if p.name.endswith(".yaml"))


MAX_CONFIG_DEPTH = 32  # nesting a config may have (the presets use 4): deeper is refused before Python's recursion limit


class _BoundedLoader(yaml.SafeLoader):
    """yaml's safe loader, refusing nesting deeper than ``MAX_CONFIG_DEPTH``."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_CONFIG_DEPTH:
                raise yaml.YAMLError(f"nested more than {MAX_CONFIG_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _read_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.load(text, Loader=_BoundedLoader) or {}
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
    choices keyed by input kind (text / image / audio / sequence / tabular: every input of that kind) or column."""
    overrides: dict[str, Any] = {}
    given = {k: v for k, v in train.items() if v is not None}
    if given:
        overrides["train"] = given
    for key, name in (encoders or {}).items():
        section = "encoders" if key in _input_kinds() else "column_encoders"
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
    layers = []
    if isinstance(config_file, dict):
        layers, source = [config_file], "config"
    elif config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        layers, source = [_read_yaml(path.read_text(), str(path))], str(path)
    layers += [overrides] if overrides else []
    chosen = {kind for layer in layers for kind in (layer.get("encoders") or {})}
    if chosen and isinstance(data.get("rules"), list):  # an encoder the user names for a kind beats the preset's rules
        data["rules"] = [r for r in data["rules"] if not (isinstance(r, dict) and r.get("input") in chosen)]
    for layer in layers:
        data = _deep_merge(data, layer)
    return validate_config(data, source)


def with_members(cfg: "ModelConfig", members: list[str] | None, exclude: list[str] | None,
                 refit: bool | None = None) -> "ModelConfig":
    """The config with its portfolio's members: ``members`` (None: the config's) without ``exclude``; ``refit``
    (None: the config's)."""
    chosen = list(members or cfg.portfolio.members)
    for name in [*chosen, *(exclude or [])]:
        if name not in MEMBERS:
            raise ConfigError(f"unknown portfolio member {name!r}; choose from: {', '.join(member_names())}")
    chosen = [m for m in chosen if m not in (exclude or [])]
    if not chosen:
        raise ConfigError("--exclude-members leaves no member to train")
    update = {"members": chosen} | ({} if refit is None else {"refit": refit})
    return cfg.model_copy(update={"portfolio": cfg.portfolio.model_copy(update=update)})


def with_finetuning(cfg: ModelConfig) -> ModelConfig:
    """The config with every encoder that brings its own processor (a pretrained one) set to train its backbone."""
    cfg = cfg.model_copy(deep=True)
    for enc in [*cfg.encoders.values(), *(r.encoder for r in cfg.rules), *cfg.column_encoders.values()]:
        if ENCODERS.meta(enc.name).get("processor"):
            enc.params["finetune"] = True
    return cfg

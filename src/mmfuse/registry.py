"""Name -> class registries for encoders and fusion methods.

Adding an encoder is one class plus one decorator line (as timm's ``register_model``)::

    @register_encoder("lstm", modality="text")
    class LSTMEncoder(nn.Module): ...

    create_encoder("lstm", vocab_size=10000, hidden_dim=None)  # None kwargs fall back to the class defaults
"""

from __future__ import annotations

import warnings
from typing import Callable

from torch import nn

from .errors import ConfigError

_ENCODERS: dict[str, tuple[str, type[nn.Module]]] = {}
_FUSIONS: dict[str, type[nn.Module]] = {}


def register_encoder(name: str, modality: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: make an encoder available as ``name`` for columns of ``modality``."""

    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        if name in _ENCODERS:
            warnings.warn(f"encoder {name!r} registered twice; the later definition wins", stacklevel=2)
        _ENCODERS[name] = (modality, cls)
        return cls

    return wrap


def register_fusion(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: make a fusion method available as ``name``."""

    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        if name in _FUSIONS:
            warnings.warn(f"fusion {name!r} registered twice; the later definition wins", stacklevel=2)
        _FUSIONS[name] = cls
        return cls

    return wrap


def _load_builtins() -> None:
    from . import encoders, fusion  # noqa: F401  (importing registers the built-in classes)


def list_encoders(modality: str | None = None) -> list[str]:
    """Registered encoder names, optionally only those for one modality."""
    _load_builtins()
    return sorted(n for n, (m, _) in _ENCODERS.items() if modality is None or m == modality)


def list_fusions() -> list[str]:
    """Registered fusion method names."""
    _load_builtins()
    return sorted(_FUSIONS)


def encoder_modality(name: str) -> str:
    """The modality an encoder was registered for."""
    _load_builtins()
    if name not in _ENCODERS:
        raise ConfigError(f"unknown encoder {name!r}; choose from: {', '.join(list_encoders())}")
    return _ENCODERS[name][0]


def encoder_class(name: str) -> type[nn.Module]:
    """The class registered as ``name``."""
    encoder_modality(name)
    return _ENCODERS[name][1]


def create_encoder(name: str, **kwargs) -> nn.Module:
    """Instantiate a registered encoder; kwargs that are None are dropped so class defaults apply."""
    return encoder_class(name)(**{k: v for k, v in kwargs.items() if v is not None})


def create_fusion(name: str, input_dims: dict[str, int], out_dim: int, **kwargs) -> nn.Module:
    """Instantiate a registered fusion method for the given per-input feature widths and task output width."""
    _load_builtins()
    if name not in _FUSIONS:
        raise ConfigError(f"unknown fusion {name!r}; choose from: {', '.join(list_fusions())}")
    return _FUSIONS[name](input_dims, out_dim, **{k: v for k, v in kwargs.items() if v is not None})

"""One ``Registry`` type for everything chosen by name: modalities, encoders, fusions, processors and tasks.

Adding a component is one class plus one decorator line (as timm's ``register_model``)::

    @ENCODERS.register("lstm", modality="text")
    class LSTMEncoder(nn.Module): ...

    ENCODERS.create("lstm", vocab_size=10000, hidden_dim=None)  # None kwargs fall back to the class defaults

This module imports nothing from mmfuse but ``errors``: the packages that register into it
(``mmfuse.modalities``, ``mmfuse.nn``, ``mmfuse.tasks``) import it, never the other way round.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

from .errors import ConfigError


class Registry:
    """Name -> object, with free-form metadata per name (e.g. the modality an encoder reads)."""

    def __init__(self, what: str):
        self.what = what
        self._items: dict[str, tuple[Any, dict[str, Any]]] = {}

    def add(self, name: str, obj: Any, **meta: Any) -> Any:
        if name in self._items:
            warnings.warn(f"{self.what} {name!r} registered twice; the later definition wins", stacklevel=3)
        self._items[name] = (obj, meta)
        return obj

    def register(self, name: str, **meta: Any) -> Callable[[Any], Any]:
        """Class decorator: make ``cls`` available as ``name``, with ``meta`` for ``meta(name)``."""
        return lambda obj: self.add(name, obj, **meta)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def names(self, **where: Any) -> list[str]:
        """Registered names, optionally only those whose metadata has the given values."""
        return sorted(n for n, (_, meta) in self._items.items() if all(meta.get(k) == v for k, v in where.items()))

    def get(self, name: str) -> Any:
        """The object registered as ``name``; an unknown name is a ConfigError listing the choices."""
        if name not in self._items:
            raise ConfigError(f"unknown {self.what} {name!r}; choose from: {', '.join(self.names())}")
        return self._items[name][0]

    def meta(self, name: str) -> dict[str, Any]:
        self.get(name)
        return self._items[name][1]

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Instantiate a registered class; kwargs that are None are dropped so class defaults apply."""
        return self.get(name)(*args, **{k: v for k, v in kwargs.items() if v is not None})


MODALITIES = Registry("modality")    # column modality -> core.Modality (detection, input kind, defaults)
PROCESSORS = Registry("processor")   # processor kind -> core.Processor subclass
ENCODERS = Registry("encoder")       # name -> nn.Module class; meta: modality (input kind), processor
FUSIONS = Registry("fusion method")  # name -> nn.Fusion subclass
TASKS = Registry("task")             # name -> Task class
MEMBERS = Registry("portfolio member")  # name -> portfolio.member.Member subclass (the network is one)


def list_encoders(modality: str | None = None) -> list[str]:
    """Registered encoder names, optionally only those for one input kind (text, image, ..., tabular)."""
    return ENCODERS.names(**({"modality": modality} if modality else {}))


def list_fusions() -> list[str]:
    """Registered fusion method names."""
    return FUSIONS.names()

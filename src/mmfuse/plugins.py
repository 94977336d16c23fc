"""Plugins outside mmfuse: modules that register modalities, processors, encoders or fusions when imported.

Where they come from, in the order they are imported: the ``mmfuse.plugins`` entry-point group of installed
packages, the ``MMFUSE_PLUGINS`` variable (comma-separated module names), ``mmfuse --plugin MODULE`` (repeatable),
and ``plugins=`` of ``Predictor.load``. A saved model's ``plugins`` list is what it needs: loading imports a module
of it only when one of those allowed it (a model folder is data: naming a module there never runs it), else stops
with one line saying how to allow it. A plugin named by the user that fails to import stops with a
``PluginError`` naming it; an installed entry point that fails is a warning, and breaks only what needs it::

    # pyproject.toml of a plugin package
    [project.entry-points."mmfuse.plugins"]
    colour = "mmfuse_colour"
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from functools import cache
from importlib.metadata import entry_points
from typing import Iterable

from .errors import BundleError

log = logging.getLogger("mmfuse")
ENTRY_POINTS = "mmfuse.plugins"
ENV = "MMFUSE_PLUGINS"
_failed: dict[str, str] = {}  # module -> why it did not import (reported once)
_allowed: set[str] = set()    # modules the user named (--plugin, MMFUSE_PLUGINS, plugins=) in this process


class PluginError(BundleError):
    """A plugin a model needs could not be imported."""


# why the mmfuse command may not find a plugin module in the current folder, and the two ways to fix that
IMPORT_HINT = ("make it importable: run with PYTHONPATH=. from the folder that holds it (the mmfuse command does not "
               "look in the current folder), or pip install -e its package")


def import_plugin(module: str) -> None:
    """Import one plugin module; a failure is a ``PluginError`` naming it, the reason and how to fix it."""
    try:
        importlib.import_module(module)
    except (Exception, SystemExit, KeyboardInterrupt) as err:  # anything a user's module does at import, an exit
        # or an interrupt included: name the module, not our stack, and never end the command silently
        reason = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        _failed[module] = reason
        hint = IMPORT_HINT if isinstance(err, ModuleNotFoundError) and err.name == module.split(".")[0] else \
            "fix the error in the module"
        raise PluginError(f"plugin {module!r} could not be imported ({reason}): {hint}") from None


def load_plugins(modules: Iterable[str] = ()) -> list[str]:
    """Import the entry-point plugins, those in ``MMFUSE_PLUGINS``, then ``modules``. An installed entry point that
    fails is one warning (once) and skipped: only what needs it stops. A module named here or in ``MMFUSE_PLUGINS``
    was asked for: its failure is a ``PluginError``. Returns the modules imported."""
    named = _env_plugins() + list(modules)
    _allowed.update(named)
    loaded = []
    for module in dict.fromkeys([*installed_plugins(), *named]):
        if module in _failed and module not in named:
            continue
        try:
            import_plugin(module)
            loaded.append(module)
        except PluginError as err:
            if module in named:
                raise
            log.warning(str(err))
    return loaded


def _env_plugins() -> list[str]:
    return [m.strip() for m in os.environ.get(ENV, "").split(",") if m.strip()]


@cache
def installed_plugins() -> tuple[str, ...]:
    """The modules the installed packages declare in the ``mmfuse.plugins`` entry-point group (read once)."""
    return tuple(ep.value.split(":")[0] for ep in entry_points(group=ENTRY_POINTS))


def plugin_modules(objects: Iterable[object]) -> list[str]:
    """The modules outside mmfuse that define ``objects`` (registered classes): what a saved model must import."""
    modules = {getattr(obj, "__module__", "") for obj in objects}
    return sorted(m for m in modules if m and m != "mmfuse" and not m.startswith("mmfuse."))


def require_plugins(modules: Iterable[str], what: str, allowed: Iterable[str] = ()) -> None:
    """Make sure the plugins ``what`` (a model folder) was trained with are imported: one already imported is used,
    one the user allowed (an installed entry point, ``--plugin``, ``MMFUSE_PLUGINS``, or ``allowed``: ``plugins=``
    of ``load``) is imported; any other is a ``PluginError`` saying how to allow it, and so is one that fails."""
    allowed = {*installed_plugins(), *_env_plugins(), *_allowed, *allowed}
    for module in modules:
        if module == "__main__":
            raise PluginError(f"{what} uses a modality, encoder or processor defined in a script (__main__): "
                              "move it to an importable module, or import the script's definitions before loading")
        if module in sys.modules:
            continue
        if module not in allowed:
            raise PluginError(f"{what} needs the plugin {module!r}, which is not imported: a model folder never "
                              f"imports code by itself, so allow it with mmfuse --plugin {module} ..., "
                              f"MMFUSE_PLUGINS={module} or load(..., plugins=[{module!r}]) if you trust it")
        try:
            import_plugin(module)
        except PluginError:
            raise PluginError(f"{what} needs the plugin {module!r}, which could not be imported "
                              f"({_failed[module]}): {IMPORT_HINT}") from None

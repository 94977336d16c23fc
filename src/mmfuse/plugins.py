"""Plugins outside mmfuse: modules that register modalities, processors, encoders or fusions when imported.

Where they come from, in the order they are imported: the ``mmfuse.plugins`` entry-point group of installed
packages, the ``MMFUSE_PLUGINS`` variable (comma-separated module names), ``mmfuse --plugin MODULE`` (repeatable),
and a saved model's ``plugins`` list (``Predictor.load`` imports what the model was trained with). A plugin that
named by the user (``--plugin``, ``MMFUSE_PLUGINS``) that fails to import stops with a ``PluginError`` naming it; an
installed entry point that fails is a warning, and breaks only what needs it::

    # pyproject.toml of a plugin package
    [project.entry-points."mmfuse.plugins"]
    colour = "mmfuse_colour"
"""

from __future__ import annotations

import importlib
import logging
import os
from functools import cache
from importlib.metadata import entry_points
from typing import Iterable

from .errors import BundleError

log = logging.getLogger("mmfuse")
ENTRY_POINTS = "mmfuse.plugins"
ENV = "MMFUSE_PLUGINS"
_failed: dict[str, str] = {}  # module -> why it did not import (reported once)


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
    named = [m.strip() for m in os.environ.get(ENV, "").split(",") if m.strip()] + list(modules)
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


@cache
def installed_plugins() -> tuple[str, ...]:
    """The modules the installed packages declare in the ``mmfuse.plugins`` entry-point group (read once)."""
    return tuple(ep.value.split(":")[0] for ep in entry_points(group=ENTRY_POINTS))


def plugin_modules(objects: Iterable[object]) -> list[str]:
    """The modules outside mmfuse that define ``objects`` (registered classes): what a saved model must import."""
    modules = {getattr(obj, "__module__", "") for obj in objects}
    return sorted(m for m in modules if m and m != "mmfuse" and not m.startswith("mmfuse."))


def require_plugins(modules: Iterable[str], what: str) -> None:
    """Import the plugins ``what`` (a model folder) was trained with; one that cannot be imported is a
    ``PluginError`` saying so."""
    for module in modules:
        if module == "__main__":
            raise PluginError(f"{what} uses a modality, encoder or processor defined in a script (__main__): "
                              "move it to an importable module, or import the script's definitions before loading")
        try:
            import_plugin(module)
        except PluginError:
            raise PluginError(f"{what} needs the plugin {module!r}, which could not be imported "
                              f"({_failed[module]}): {IMPORT_HINT}") from None

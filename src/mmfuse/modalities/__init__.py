"""Modality plugins. Importing this package registers every built-in one (as timm's ``models/__init__.py``).

A plugin is one package: its processor(s), encoders, detection rule, corruptions for the robustness analysis and
defaults, registered into ``mmfuse.registry`` when imported. Plugins import only ``core``, ``nn``, ``io``,
``registry``, ``config`` and ``errors``, never each other. A plugin defined outside mmfuse registers the same way.
"""

from . import audio, image, sequence, tabular, text  # noqa: F401

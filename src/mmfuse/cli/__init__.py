"""The ``mmfuse`` command line (click + rich live only here): the group and its entry in ``main``, the commands by
what they work on (``train``, ``models``, ``search``, ``data``), shared options in ``options``, tables in
``render``, logging and progress in ``console``. ``entry`` is the console script."""

from .main import entry, main

__all__ = ["entry", "main"]

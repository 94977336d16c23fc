"""The ``mmfuse`` command line (click + rich live only here): commands in ``main``, tables in ``render``, logging
and progress bars in ``console``. ``entry`` is the console script."""

from .main import entry, main

__all__ = ["entry", "main"]

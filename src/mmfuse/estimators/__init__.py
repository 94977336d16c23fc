"""The estimators users call: ``Predictor`` (classification / regression), ``Retriever`` (two-tower retrieval), and
``load`` for any saved model. Importing this package registers every built-in plugin (modalities and their
encoders and processors, fusion methods, tasks), then imports the installed plugins (``mmfuse.plugins``: entry
points and ``MMFUSE_PLUGINS``)."""

from .. import modalities, nn, tasks  # noqa: F401  (registration happens on import)
from ..plugins import load_plugins
from .api import load
from .predictor import Predictor
from .retriever import Retriever

__all__ = ["Predictor", "Retriever", "load"]

load_plugins()  # last: a plugin may import the estimators

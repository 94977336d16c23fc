"""mmfuse: multimodal learning from a table, offline and fast on a CPU.

    from mmfuse import Predictor
    p = Predictor(label="y").fit("train.csv")
    p.evaluate("test.csv"); p.save("model/"); Predictor.load("model/").predict("new.csv")

The public names are imported on first use, so ``mmfuse --help`` starts without loading torch.
"""

from importlib import import_module
from typing import Any

from .errors import BundleError, ConfigError, DataError, MMFuseError, NotFittedError
from .version import __version__

_LAZY = {"Predictor": "estimators", "Retriever": "estimators", "load": "estimators", "list_encoders": "registry",
         "list_fusions": "registry", "TableFile": "data.table"}

__all__ = ["Predictor", "Retriever", "load", "TableFile", "list_encoders", "list_fusions", "MMFuseError", "DataError", "ConfigError",
           "BundleError", "NotFittedError", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        if name.startswith("list_"):
            import_module(".estimators", __name__)  # the built-in plugins register on import
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'mmfuse' has no attribute {name!r}")

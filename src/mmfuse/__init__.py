"""mmfuse: multimodal learning from a table, offline and fast on a CPU.

    from mmfuse import Predictor
    p = Predictor(label="y").fit("train.csv")
    p.evaluate("test.csv"); p.save("model/"); Predictor.load("model/").predict("new.csv")
"""

__version__ = "0.1.0"

from .errors import BundleError, ConfigError, DataError, MMFuseError  # noqa: E402
from .predictor import Predictor, load  # noqa: E402
from .registry import list_encoders, list_fusions  # noqa: E402

__all__ = ["Predictor", "load", "list_encoders", "list_fusions", "MMFuseError", "DataError", "ConfigError",
           "BundleError", "__version__"]

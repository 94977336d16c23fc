"""Networks assembled from parts: model assembly, fusion methods, heads, the two-tower model, and the recurrent and
pooling pieces encoders share. Importing this package registers the built-in fusion methods."""

from . import fusion  # noqa: F401  (registers the fusion methods)

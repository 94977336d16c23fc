"""Tables in, tensors out: reading, column detection, per-column preprocessing, batching."""

from . import pretrained  # noqa: F401,E402  (registers the processor kinds of pretrained encoders)

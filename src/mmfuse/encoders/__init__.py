"""Per-modality encoders: ``forward(x: Tensor[B, ...]) -> Tensor[B, output_dim]``, registered by name.

Importing this package registers the built-ins; see ``mmfuse.registry`` for ``create_encoder`` / ``list_encoders``.
"""

from . import audio, image, pretrained, sequence, tabular, text  # noqa: F401

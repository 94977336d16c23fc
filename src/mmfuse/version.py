"""The mmfuse version: recorded in every saved model and shown by the server (importing it loads nothing else)."""

__version__ = "0.1.0"

"""``mmfuse serve``: one saved model (``/predict``) or one search index (``/search``) behind a small REST API and a
web page, loaded once, read-only. Requests carry their files as uploads or base64; the server never reads a path
named in a request. Needs the ``[serve]`` extra (FastAPI, uvicorn, python-multipart)."""

from .app import create_app
from .limits import ServeLimits

__all__ = ["ServeLimits", "create_app"]

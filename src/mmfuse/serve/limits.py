"""What one request may cost: body size, rows, seconds; and the ASGI middleware that enforces the body size while
the body streams in (a large upload is refused before it is held in memory)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class ServeLimits:
    max_body_bytes: int = 20 * 1024 * 1024   # a request's whole body: JSON, base64 or multipart uploads
    max_rows: int = 256                      # rows of one /predict request
    timeout_seconds: float = 30.0            # preprocessing + model for one request
    max_pixels: int = 25_000_000             # an uploaded image's pixels (from its header), below the model's own cap


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Answer 413 to a request whose body (declared or streamed) exceeds ``limit`` bytes."""

    def __init__(self, app: Callable, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"error": f"request body larger than {self.limit} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

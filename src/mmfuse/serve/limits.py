"""What one request may cost: body size, rows, seconds; and the ASGI middleware that enforces the body's size and
time while it streams in (a large upload is refused before it is held in memory, a client that sends its body too
slowly gets a 408, and one that goes away mid-body is one log line)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from starlette.requests import ClientDisconnect

log = logging.getLogger("mmfuse")

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
    body_seconds: float = 30.0               # receiving one request's body, from its first byte to its last


def log_disconnect(scope: Scope) -> None:
    log.warning(f"{scope.get('method')} {scope.get('path')}: the client went away before its request was read; "
                "nothing was done")


class BodyTooLarge(Exception):
    pass


class BodyTooSlow(Exception):
    pass


class BodyLimit:
    """Answer 413 to a request whose body (declared or streamed) exceeds ``limit`` bytes, 408 to one whose body
    takes longer than ``seconds`` to arrive; a client that disconnects mid-body is logged in one line."""

    def __init__(self, app: Callable, limit: int, seconds: float = 30.0):
        self.app, self.limit, self.seconds = app, limit, seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        seen = 0
        started, body_done = False, False
        until = time.monotonic() + self.seconds

        async def counting_receive() -> Message:
            nonlocal seen, body_done
            if body_done:  # after the body, the app only listens for a disconnect: no limit
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(until - time.monotonic(), 0.001))
            except asyncio.TimeoutError:
                raise BodyTooSlow from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
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
        except BodyTooSlow:
            if not started:
                await self._refuse(send, 408, f"request body not received within {self.seconds:g} s")
        except ClientDisconnect:
            log_disconnect(scope)

    async def _refuse(self, send: Send, status: int = 413, message: str = "") -> None:
        body = json.dumps({"error": message or f"request body larger than {self.limit} bytes"}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

"""Reading what is left of a request body before an error answers it, so the client gets the answer.

A request refused before its body was read (most often a 401: oras-py's basic backend, python-dxf and curl
scripts send credentials only after one) leaves unread bytes on the connection; closing a TCP connection
with unread bytes makes the kernel reset it, and a client still sending its body then sees a broken
connection instead of the 401 it needs to retry with credentials. Go's net/http (and so Distribution) reads
up to 256 KiB of such a body for the same reason; trustyard reads up to ``DRAIN_LIMIT``, enough for the
monolithic uploads of small artifacts that such clients send, and leaves larger bodies to the reset.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DRAIN_LIMIT = 8 * 1024 * 1024


class DrainUnreadBody:
    """Plain ASGI middleware: before an error response starts, read and drop the rest of the request body,
    up to ``limit`` bytes."""

    def __init__(self, app: ASGIApp, limit: int = DRAIN_LIMIT) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        finished = False

        async def tracking_receive() -> Message:
            nonlocal finished
            message = await receive()
            finished = finished or message["type"] == "http.disconnect" or not message.get("more_body", False)
            return message

        async def draining_send(message: Message) -> None:
            nonlocal finished
            if message["type"] == "http.response.start" and message["status"] >= 400 and not finished:
                finished = True
                await self._drain(receive, scope)
            await send(message)

        await self.app(scope, tracking_receive, draining_send)

    async def _drain(self, receive: Receive, scope: Scope) -> None:
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            return
        read = 0
        while read <= self.limit:
            message = await receive()
            if message["type"] != "http.request":
                return
            read += len(message.get("body", b""))
            if not message.get("more_body", False):
                return


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value)
    return None


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    return int(value) if value is not None and value.isdigit() else None


def _has_body(scope: Scope) -> bool:
    length = _content_length(scope)
    return (length is not None and length > 0) or b"chunked" in (_header(scope, b"transfer-encoding") or b"").lower()

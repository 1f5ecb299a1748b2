"""Reading what is left of a request body before an error answers it, so the client gets the answer.

A request refused before its body was read (most often a 401: oras-py's basic backend, python-dxf and curl
scripts send credentials only after one) leaves unread bytes on the connection; closing a TCP connection
with unread bytes makes the kernel reset it, and a client still sending its body then sees a broken
connection instead of the 401 it needs to retry with credentials. Go's net/http (and so Distribution) reads
up to 256 KiB of such a body for the same reason; trustyard reads up to ``DRAIN_LIMIT``, enough for the
monolithic uploads of small artifacts that such clients send, and leaves larger bodies to the reset.

The edge (``trustyard/edge.py``) makes an ``UnreadBody`` for each request that has a body, shows it every
message it receives, and calls ``before_error`` before an error response starts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]

DRAIN_LIMIT = 8 * 1024 * 1024


class UnreadBody:
    """The body of one request: whether it was read to its end, and reading (and dropping) the rest of it,
    up to ``limit`` bytes."""

    __slots__ = ("declared", "finished", "limit")

    def __init__(self, declared: int | None, limit: int = DRAIN_LIMIT) -> None:
        self.declared = declared
        self.limit = limit
        self.finished = False

    @classmethod
    def of(cls, scope: Scope, limit: int = DRAIN_LIMIT) -> UnreadBody | None:
        """None for a request without a body (no positive Content-Length, not chunked): nothing to drain."""
        length, chunked = None, False
        for key, value in scope.get("headers", ()):  # one pass: this runs on every request
            key = key.lower()
            if key == b"content-length":
                length = int(value) if value.isdigit() else None
            elif key == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        if (length is not None and length > 0) or chunked:
            return cls(length, limit)
        return None

    def saw(self, message: Message) -> None:
        """A message the application received: the body ends with its last chunk, or with a disconnect."""
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            self.finished = True

    async def before_error(self, receive: Receive) -> None:
        """An error is about to answer: read the rest of the body unless it was read or is over the limit."""
        if self.finished:
            return
        self.finished = True
        if self.declared is not None and self.declared > self.limit:
            return
        read = 0
        while read <= self.limit:
            message = await receive()
            if message["type"] != "http.request":
                return
            read += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

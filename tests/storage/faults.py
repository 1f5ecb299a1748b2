"""FaultProxy: a tiny HTTP/1.1 proxy on loopback that puts faults between a driver and a real object store.

Each request is read whole (head and Content-Length body; ``Expect: 100-continue`` is answered here), then
either answered with an error, cut off, or forwarded with ``Connection: close`` and its response piped back.
Faults are planned per request, in order (``plan``), or for every request (``always``), optionally only for
requests ``match`` accepts. Requests are forwarded byte for byte, Host header included, so SigV4 signatures
still verify upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Fault:
    kind: str  # "status": answer with ``status``; "reset": drop the connection before answering;
    # "cut": forward, then drop the connection after ``after`` bytes of the response body
    status: int = 503
    code: str = "SlowDown"
    after: int = 0

    @classmethod
    def slow_down(cls) -> Fault:
        return cls("status", 503, "SlowDown")

    @classmethod
    def throttled(cls) -> Fault:
        return cls("status", 429, "TooManyRequests")

    @classmethod
    def reset(cls) -> Fault:
        return cls("reset")

    @classmethod
    def cut(cls, after: int) -> Fault:
        return cls("cut", after=after)


@dataclass
class FaultProxy:
    upstream_host: str
    upstream_port: int
    match: Callable[[str, str], bool] = lambda _method, _path: True
    requests: list[tuple[str, str]] = field(default_factory=list)
    faulted: list[tuple[str, str, str]] = field(default_factory=list)
    _planned: list[Fault] = field(default_factory=list)
    _always: Fault | None = None
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def plan(self, *faults: Fault, match: Callable[[str, str], bool] | None = None) -> None:
        """The next matching requests get ``faults``, one each, in order; later ones pass."""
        self._planned = list(faults)
        if match is not None:
            self.match = match

    def always(self, fault: Fault | None) -> None:
        self._always = fault

    def _next_fault(self, method: str, path: str) -> Fault | None:
        if not self.match(method, path):
            return None
        if self._always is not None:
            return self._always
        return self._planned.pop(0) if self._planned else None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the proxy stops
        finally:
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Handle one request; True when the client connection stays open for another."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        lines = head.decode("latin-1").split("\r\n")
        method, path = lines[0].split(" ")[:2]
        headers = [line for line in lines[1:] if line]
        length = 0
        expect = False
        kept: list[str] = []
        for line in headers:
            name, _, value = line.partition(":")
            lowered = name.strip().lower()
            if lowered == "content-length":
                length = int(value.strip())
            if lowered == "expect":
                expect = True
                continue
            if lowered in ("connection", "keep-alive"):
                continue
            kept.append(line)
        if expect:
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        body = await reader.readexactly(length) if length else b""
        self.requests.append((method, path))
        fault = self._next_fault(method, path)
        if fault is not None:
            self.faulted.append((fault.kind, method, path))
        if fault is not None and fault.kind == "reset":
            writer.transport.abort()
            return False
        if fault is not None and fault.kind == "status":
            xml = (
                f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{fault.code}</Code>'
                f"<Message>injected by FaultProxy</Message></Error>"
            ).encode()
            writer.write(
                f"HTTP/1.1 {fault.status} Injected\r\nContent-Type: application/xml\r\n"
                f"Content-Length: {len(xml)}\r\n\r\n".encode()
                + (xml if method != "HEAD" else b"")  # a response to HEAD never has a body (RFC 9110 9.3.2)
            )
            await writer.drain()
            return True
        upstream_reader, upstream_writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        try:
            request = "\r\n".join([lines[0], *kept, "Connection: close", "", ""]).encode()
            upstream_writer.write(request + body)
            await upstream_writer.drain()
            if fault is not None and fault.kind == "cut":
                response_head = await upstream_reader.readuntil(b"\r\n\r\n")
                writer.write(response_head)
                sent = 0
                while sent < fault.after:
                    data = await upstream_reader.read(min(65536, fault.after - sent))
                    if not data:
                        break
                    writer.write(data)
                    sent += len(data)
                await writer.drain()
                writer.transport.abort()
                return False
            while data := await upstream_reader.read(1024 * 1024):
                writer.write(data)
                await writer.drain()
        finally:
            upstream_writer.close()
        return False  # the response was delimited by the upstream closing: so must ours be

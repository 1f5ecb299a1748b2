"""A real HTTP receiver for webhook tests (aiohttp on a free loopback port), and its pytest fixture."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web


@dataclass
class Receiver:
    """An HTTP endpoint that records every request; ``failures`` makes the next N requests answer 503."""

    port: int
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    failures: int = 0
    refused: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    def events(self) -> list[dict[str, Any]]:
        return [event for _, body in self.received for event in json.loads(body)["events"]]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.failures:
            self.failures -= 1
            self.refused += 1
            return web.Response(status=503, text="receiver is down for maintenance")
        self.received.append((dict(request.headers), body))
        return web.Response(status=200)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver(free_port())
    app = web.Application()
    app.router.add_post("/events", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", found.port).start()
    try:
        yield found
    finally:
        await runner.cleanup()

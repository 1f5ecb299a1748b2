"""A real HTTP receiver for webhook tests (aiohttp on a free loopback port), and its pytest fixture."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


class ThreadedReceiver:
    """A real HTTP server (http.server) in a thread, for synchronous tests; answers 503 while ``down``."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.down = False
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if owner.down:
                    self.send_response(503)
                    self.end_headers()
                    return
                with owner.lock:
                    owner.events.extend(json.loads(body)["events"])
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/events"

    def pushes(self) -> list[str]:
        with self.lock:
            return [e["target"]["tag"] for e in self.events if e["action"] == "push" and "tag" in e["target"]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

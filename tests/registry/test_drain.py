"""``UnreadBody``, as the edge (trustyard/edge.py) uses it: an error answered before the request body was
read first reads the rest of it (up to a limit), so closing the connection cannot reset it under the client;
tests/e2e/test_python_clients.py shows the effect over TCP."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from trustyard.edge import Edge

Message = dict[str, Any]


async def run(status: int, chunks: list[bytes], limit: int = 1024, read_first: int = 0) -> list[str]:
    """Run an app that reads ``read_first`` chunks then answers ``status``; the order of events."""
    events: list[str] = []
    pending = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1} for i, chunk in enumerate(chunks)
    ]

    async def receive() -> Message:
        if not pending:
            events.append("waited for disconnect")
            return {"type": "http.disconnect"}
        message = pending.pop(0)
        events.append(f"received {len(message['body'])}")
        return message

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            events.append(f"answered {message['status']}")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        for _ in range(read_first):
            await receive()
        await Response(status_code=status)(scope, receive, send)

    length = sum(len(c) for c in chunks)
    headers = [(b"content-length", str(length).encode())]
    scope = {"type": "http", "method": "PUT", "path": "/v2/a/blobs/uploads/u", "headers": headers}
    await Edge(app, json_access_log=False, drain_limit=limit)(scope, receive, send)
    return events


async def test_an_early_error_reads_the_rest_of_the_body_first() -> None:
    assert await run(401, [b"a" * 100, b"b" * 100, b"c" * 10]) == [
        "received 100",
        "received 100",
        "received 10",
        "answered 401",
    ]


async def test_a_partly_read_body_is_read_to_its_end() -> None:
    events = await run(416, [b"a" * 10, b"b" * 10, b"c" * 10], read_first=1)
    assert events == ["received 10", "received 10", "received 10", "answered 416"]


async def test_a_read_body_or_a_success_is_left_alone() -> None:
    assert await run(400, [b"a" * 10], read_first=1) == ["received 10", "answered 400"]
    assert await run(201, [b"a" * 10, b"b" * 10]) == ["answered 201"]


async def test_a_body_over_the_limit_is_not_read() -> None:
    assert await run(401, [b"a" * 600, b"b" * 600], limit=1000) == ["answered 401"]


async def test_a_request_without_a_body_is_not_read() -> None:
    events: list[str] = []

    async def receive() -> Message:
        events.append("received")
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            events.append(f"answered {message['status']}")

    scope = {"type": "http", "method": "GET", "path": "/v2/", "headers": []}
    await Edge(Response(status_code=401), json_access_log=False)(scope, receive, send)
    assert events == ["answered 401"]

"""What an ASGI response object sends when it is called, collected as a list of messages."""

from __future__ import annotations

from typing import Any


async def sent(response: Any) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    async def receive() -> dict[str, Any]:
        raise AssertionError("not read")

    await response({"type": "http"}, receive, send)
    return messages

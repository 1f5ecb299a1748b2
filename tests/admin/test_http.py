"""What every admin handler shares: callers proved before a body is read, bodies bounded before parsing."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ..asgi import http_scope
from ..registry.conftest import ADMIN, BASE_URL, Registry, running

DEEP = b"[" * 5000  # json.loads recurses once per bracket: a RecursionError, a 500, before this was bounded


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[Registry]:
    async with running(tmp_path / "data") as started:
        yield started


async def send(
    registry: Registry, method: str, path: str, body: bytes, auth: tuple[str, str] | None
) -> tuple[int, bytes, bool]:
    """One request straight to the ASGI app: the status, the body, and whether the app read the request body."""
    read = False
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        nonlocal read
        read = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def record(message: dict[str, object]) -> None:
        sent.append(message)

    headers = [(b"host", b"registry.test"), (b"content-type", b"application/json")]
    headers.append((b"content-length", str(len(body)).encode()))
    if auth:
        headers.append((b"authorization", b"Basic " + base64.b64encode(":".join(auth).encode())))
    await registry.asgi(http_scope(method, path, headers), receive, record)
    status = sent[0]["status"]
    assert isinstance(status, int)
    return status, b"".join(m["body"] for m in sent[1:] if isinstance(m.get("body"), bytes)), read  # type: ignore[misc]


@pytest.mark.parametrize(
    "path", ["/api/v1/users", "/api/v1/organizations", "/api/v1/grants", "/api/v1/settings/storage/test"]
)
async def test_anonymous_bodies_are_refused_unparsed(registry: Registry, path: str) -> None:
    # A 401, not the 400 that parsing DEEP gives: the caller is checked before the body is parsed. The bytes
    # are still drained (registry/drain.py) so that a client sending its body first sees the 401.
    status, body, _read = await send(registry, "POST", path, DEEP, None)
    assert status == 401, body
    assert b"UNAUTHORIZED" in body


@pytest.mark.parametrize("path", ["/api/v1/users", "/api/v1/organizations", "/api/v1/users/admin/tokens"])
async def test_deep_json_is_a_400_not_a_500(registry: Registry, path: str) -> None:
    status, body, _ = await send(registry, "POST", path, DEEP, ADMIN)
    assert status == 400, body
    assert b"nests deeper than 64 levels" in body


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/api/v1/settings/storage/test"), ("PUT", "/api/v1/webhooks/deep")]
)
async def test_deep_yaml_blocks_are_a_400(registry: Registry, method: str, path: str) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=registry.asgi), base_url=BASE_URL, auth=ADMIN
    ) as admin:
        for body in (DEEP, b"- " * 5000 + b"x"):
            response = await admin.request(method, path, content=body, headers={"content-type": "application/yaml"})
            assert response.status_code == 400, response.text
            assert response.json()["error"]["code"] == "INVALID"


async def test_a_unicode_digit_limit_is_a_400(registry: Registry) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=registry.asgi), base_url=BASE_URL, auth=ADMIN
    ) as admin:
        await admin.put("/api/v1/webhooks/ci", json={"url": "http://127.0.0.1:9/hook"})
        response = await admin.get("/api/v1/webhooks/ci/deliveries", params={"limit": "²"})
        assert response.status_code == 400, response.text

"""The composition root's response headers: the API version everywhere, HSTS only on TLS."""

from __future__ import annotations

from pathlib import Path

import httpx

from .registry.conftest import running


async def test_hsts_on_tls_responses_only(tmp_path: Path) -> None:
    async with running(tmp_path / "data") as registry:
        transport = httpx.ASGITransport(app=registry.asgi)
        for scheme, expected in (("https", "max-age=31536000"), ("http", None)):
            async with httpx.AsyncClient(transport=transport, base_url=f"{scheme}://registry.test") as client:
                for path in ("/v2/", "/ca", "/login", "/api/v1/me"):
                    response = await client.get(path)
                    assert response.headers.get("strict-transport-security") == expected, (scheme, path)
                    assert response.headers["docker-distribution-api-version"] == "registry/2.0"

"""``GET /api/v1/info``: the registry at a glance, for site admins only; in the OpenAPI document."""

from __future__ import annotations

from pathlib import Path

import httpx

from trustyard.services.actor import Actor

from ..registry.conftest import ADMIN, BASE_URL, push_image, running

PASSWORD = "a-long-enough-password"


async def test_site_admins_see_it_and_nobody_else(tmp_path: Path) -> None:
    async with running(tmp_path / "data", public_url="https://registry.example") as registry:
        await registry.asgi.state.services.users.create(Actor.system(), "alice", PASSWORD)
        await push_image(registry.client, "acme/app", "v1")
        transport = httpx.ASGITransport(app=registry.asgi)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            anonymous = await client.get("/api/v1/info")
            user = await client.get("/api/v1/info", auth=("alice", PASSWORD))
            admin = await client.get("/api/v1/info", auth=ADMIN)
            openapi = (await client.get("/api/v1/openapi.json")).json()

    assert anonymous.status_code == 401
    assert user.status_code == 403
    assert "alice is not an administrator" in user.json()["error"]["message"]
    assert admin.status_code == 200, admin.text
    found = admin.json()
    assert found["urls"]["registry"] == "https://registry.example/v2/"
    assert found["urls"]["public_url"] == "https://registry.example"
    assert found["counts"]["repositories"] == 1
    assert found["counts"]["tags"] == 1
    assert found["counts"]["bytes"] > 0
    assert found["storage"]["driver"] == "filesystem"
    assert found["database"]["dialect"] == "sqlite"
    assert found["tls"]["names"]  # the app's own certificate, made on start
    assert found["tls"]["ca_fingerprint"].count(":") == 31
    assert openapi["paths"]["/api/v1/info"]["get"]["responses"]["200"]
    assert "Info" in openapi["components"]["schemas"]

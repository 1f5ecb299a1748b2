"""``/api/v1/policies`` and what a policy does at the registry edge: an immutable tag refused with the
spec's DENIED error (403) and a message naming the policy; the retention plan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ..registry.conftest import ADMIN, BASE_URL, Registry, push_image, put_manifest, running


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[Registry]:
    async with running(tmp_path / "data") as started:
        yield started


async def test_immutable_tag_over_the_registry_api(registry: Registry) -> None:
    api = httpx.AsyncClient(transport=httpx.ASGITransport(app=registry.asgi), base_url=BASE_URL)
    async with api:
        first = await push_image(registry.client, "acme/app", "v1")
        saved = await api.put("/api/v1/policies/acme/*", json={"immutable": True}, auth=ADMIN)
        assert saved.status_code == 200, saved.text
        assert saved.json()["pattern"] == "acme/*"
        other = await push_image(registry.client, "acme/app", "@", seed="other")
        moved = await put_manifest(registry.client, "acme/app", "v1", other.manifest, other.media_type)
        assert moved.status_code == 403
        error = moved.json()["errors"][0]
        assert error["code"] == "DENIED"
        assert "tag v1 in acme/app is immutable (tag policy acme/*)" in error["message"]
        again = await put_manifest(registry.client, "acme/app", "v1", first.manifest, first.media_type)
        assert again.status_code == 201  # the same manifest: a retry
        deleted = await registry.client.delete("/v2/acme/app/manifests/v1")
        assert deleted.status_code == 403
        assert deleted.json()["errors"][0]["code"] == "DENIED"
        listed = (await api.get("/api/v1/policies", auth=ADMIN)).json()["policies"]
        assert [p["pattern"] for p in listed] == ["acme/*"]
        bad = await api.put("/api/v1/policies/Acme//x", json={}, auth=ADMIN)
        assert bad.status_code == 400
        assert "is not a repository pattern" in bad.text
        assert (await api.delete("/api/v1/policies/acme/*", auth=ADMIN)).status_code == 204
        assert (await registry.client.delete("/v2/acme/app/manifests/v1")).status_code == 202


async def test_retention_plan(registry: Registry) -> None:
    api = httpx.AsyncClient(transport=httpx.ASGITransport(app=registry.asgi), base_url=BASE_URL)
    async with api:
        for n in range(3):
            await push_image(registry.client, "acme/app", f"b{n}", seed=str(n))
        assert (await api.put("/api/v1/policies/**", json={"keep_last": 1}, auth=ADMIN)).status_code == 200
        plan = (await api.get("/api/v1/retention/plan", auth=ADMIN)).json()["expired"]
        assert sorted(e["tag"] for e in plan) == ["b0", "b1"]
        assert (await api.get("/api/v1/retention/plan")).status_code == 401

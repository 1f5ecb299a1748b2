"""``/api/v1/settings/storage`` over HTTP: show, test, save (switching every worker), errors people can act on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from trustyard.services import Services, migration
from trustyard.services.actor import Actor
from trustyard.storage.config import FilesystemStorage, StorageSettings

from ..registry.conftest import ADMIN, BASE_URL, Registry, push_image, running

URL = "/api/v1/settings/storage"


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[Registry]:
    async with running(tmp_path / "data") as started:
        yield started


@pytest.fixture
async def admin(registry: Registry) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=registry.asgi), base_url=BASE_URL, auth=ADMIN
    ) as client:
        yield client


async def test_shows_the_default_backend(admin: httpx.AsyncClient, registry: Registry) -> None:
    response = await admin.get(URL)
    assert response.status_code == 200
    body = response.json()
    assert body["driver"] == "filesystem"
    assert body["source"] == "default"
    assert body["pinned"] is False
    assert body["parameters"]["rootdirectory"] == str(registry.data_dir / "storage")


async def test_save_switches_storage_and_audits(admin: httpx.AsyncClient, registry: Registry, tmp_path: Path) -> None:
    await push_image(registry.client, "acme/app", "v1")
    other = tmp_path / "other-root"
    response = await admin.put(URL, json={"filesystem": {"rootdirectory": str(other)}})
    assert response.status_code == 200, response.text
    assert response.json()["source"] == "runtime"
    assert response.json()["updated_by"] == "admin"

    services: Services = registry.asgi.state.services
    catalog = await registry.client.get("/v2/_catalog", headers=await _bearer(registry, "registry:catalog:*"))
    assert catalog.json()["repositories"] == []  # the new backend holds no images yet
    await push_image(registry.client, "acme/other", "v1")
    assert (other / "docker/registry/v2/repositories/acme/other/_manifests/tags/v1/current/link").exists()

    back = await admin.put(URL, json={"storage": {"filesystem": {"rootdirectory": str(registry.data_dir / "storage")}}})
    assert back.status_code == 200
    await adopted(admin)
    catalog = await registry.client.get("/v2/_catalog", headers=await _bearer(registry, "registry:catalog:*"))
    assert catalog.json()["repositories"] == ["acme/app"]  # the first backend's images are back

    events = (await admin.get("/api/v1/audit", params={"action": "settings.storage"})).json()["events"]
    assert len(events) == 2
    assert events[0]["detail"]["parameters"]["rootdirectory"] == str(registry.data_dir / "storage")
    assert services.settings is not None


async def test_yaml_distribution_block_is_accepted(admin: httpx.AsyncClient, tmp_path: Path) -> None:
    block = f"storage:\n  filesystem:\n    rootdirectory: {tmp_path / 'yaml-root'}\n  delete:\n    enabled: true\n"
    response = await admin.post(f"{URL}/test", content=block, headers={"content-type": "application/yaml"})
    assert response.status_code == 200, response.text
    assert response.json() == {"ok": True, "driver": "filesystem"}


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"s3": {"region": "us-east-1"}}, 400, "s3.bucket"),
        ({"filesystem": {"rootdir": "/x"}}, 400, "rootdir"),
        ({"filesystem": {}, "inmemory": {}}, 400, "exactly one driver"),
        ({"filesystem": {"rootdirectory": "relative/path"}}, 400, "absolute path"),
        ("not an object", 400, "must be an object"),
    ],
)
async def test_bad_settings_get_a_clear_error(admin: httpx.AsyncClient, body: object, status: int, words: str) -> None:
    response = await admin.put(URL, json=body)
    assert response.status_code == status
    assert words in response.json()["error"]["message"]


async def test_a_backend_that_fails_the_probe_is_refused_and_kept(
    admin: httpx.AsyncClient, registry: Registry, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    response = await admin.put(URL, json={"filesystem": {"rootdirectory": str(blocker / "root")}})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "STORAGE_PROBE_FAILED"
    assert "filesystem" in response.json()["error"]["message"]
    assert (await admin.get(URL)).json()["source"] == "default"  # the old backend stays
    await push_image(registry.client, "acme/app", "v1")  # and still serves


async def _bearer(registry: Registry, scope: str) -> dict[str, str]:
    return {"authorization": f"Bearer {await registry.token(scope)}"}


async def adopted(admin: httpx.AsyncClient) -> dict[str, object]:
    """Wait for the background adoption a save began (the saving worker runs it at once)."""
    for _ in range(200):
        body: dict[str, object] = (await admin.get(f"{URL}/adoption")).json()
        if body["state"] != "running":
            assert body["state"] == "done", body
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"adoption still running: {body}")


async def test_adoption_progress_and_restart(admin: httpx.AsyncClient, registry: Registry) -> None:
    await push_image(registry.client, "acme/app", "v1")
    assert (await admin.get(f"{URL}/adoption")).json() == {"state": "none"}
    started = await admin.post(f"{URL}/adoption")
    assert started.status_code == 202
    body = await adopted(admin)
    assert (body["repositories"], body["manifests"], body["tags"], body["generation"]) == (1, 1, 1, 0)


MIGRATION = "/api/v1/settings/storage/migration"


async def test_migration_over_the_api(admin: httpx.AsyncClient, registry: Registry, tmp_path: Path) -> None:
    none = await admin.get(MIGRATION)
    assert none.status_code == 404
    assert "POST a storage block" in none.json()["error"]["message"]
    image = await push_image(registry.client, "acme/app", "v1", seed="moved")
    target = tmp_path / "moved-root"
    started = await admin.post(MIGRATION, json={"storage": {"filesystem": {"rootdirectory": str(target)}}})
    assert started.status_code == 202, started.text
    assert started.json()["state"] in ("copying", "switching", "done")
    again = await admin.post(MIGRATION, json={"filesystem": {"rootdirectory": str(tmp_path / "elsewhere")}})
    assert again.status_code in (202, 409)  # 409 while the first one runs: "under way"
    services: Services = registry.asgi.state.services
    await services.migrations.join()
    done = (await admin.get(MIGRATION)).json()
    assert done["state"] == "done", done
    assert done["objects"]["done"] == done["objects"]["total"] > 0
    assert done["bytes"]["done"] == done["bytes"]["total"] > 0
    assert done["failed"] == 0
    assert done["eta_seconds"] == 0
    assert done["report"]["blobs_copied"] == 4  # config, two layers, the manifest
    assert (target / f"docker/registry/v2/blobs/sha256/{image.digest[7:9]}/{image.digest[7:]}/data").exists()
    assert (registry.data_dir / "storage/docker/registry/v2/repositories/acme/app").exists(), "source left intact"
    pulled = await registry.client.get(
        "/v2/acme/app/manifests/v1", headers=await _bearer(registry, "repository:acme/app:pull")
    )
    assert pulled.status_code == 200
    events = (await admin.get("/api/v1/audit", params={"action": "storage.migrate"})).json()["events"]
    assert events[0]["target"] == f"the directory {target}"


async def test_a_migration_to_a_failing_backend_is_refused(admin: httpx.AsyncClient, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    response = await admin.post(MIGRATION, json={"filesystem": {"rootdirectory": str(tmp_path / "file" / "root")}})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "STORAGE_PROBE_FAILED"
    assert "Not a directory" in response.json()["error"]["message"]
    assert (await admin.get(MIGRATION)).status_code == 404  # nothing was started


async def test_cancelling_a_migration_over_the_api(
    admin: httpx.AsyncClient, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migration, "SETTLE_SECONDS", 0)
    none = await admin.delete(MIGRATION)
    assert none.status_code == 400
    assert "no storage migration is under way" in none.json()["error"]["message"]
    await push_image(registry.client, "acme/app", "v1", seed="stays")
    services: Services = registry.asgi.state.services
    target = StorageSettings(filesystem=FilesystemStorage(rootdirectory=tmp_path / "abandoned"))
    started = await services.migrations.start(Actor.system(), target)  # recorded and switched; not copied yet
    cancelled = await admin.delete(MIGRATION)
    assert cancelled.status_code == 202, cancelled.text
    assert cancelled.json()["state"] in ("cancelling", "cancelled")
    await services.migrations.join()
    ended = (await admin.get(MIGRATION)).json()
    assert (ended["id"], ended["state"], ended["source"]) == (started.id, "cancelled", started.source)
    again = await admin.delete(MIGRATION)
    assert again.status_code == 400
    pulled = await registry.client.get(
        "/v2/acme/app/manifests/v1", headers=await _bearer(registry, "repository:acme/app:pull")
    )
    assert pulled.status_code == 200
    events = (await admin.get("/api/v1/audit", params={"action": "storage.migrate.cancel"})).json()["events"]
    assert events[0]["actor"] == "admin"

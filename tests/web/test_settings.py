"""Settings > Storage through the form and the YAML upload: test, save, errors that keep what was typed (but
never a secret), write-only secrets, and settings pinned by the config file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.registry.conftest import Registry, push_image, running
from trustyard.services import Services, migration
from trustyard.services.actor import Actor
from trustyard.services.adoption import LEASE
from trustyard.storage.config import FilesystemStorage, StorageSettings, parse_storage_block

from .conftest import Browser, browser_of


async def test_page_states_what_happens_to_images(admin: Browser) -> None:
    page = await admin.get("/settings/storage")
    assert "<em>Save</em> switches without copying" in page.text
    assert "switching back shows the current images again." in page.text
    assert "<em>Migrate to this backend</em> copies every image there while the registry keeps serving" in page.text
    assert "No migration has run." in page.text
    assert 'id="type-filesystem" name="type" value="filesystem" checked' in page.text
    for label in (
        "Root directory",
        "AWS Region name",
        "S3 bucket name",
        "AWS access key",
        "AWS secret key",
        "Region endpoint",
        "Authorization URL",
        "Username",
        "Password or API key",
        "Container",
    ):
        assert f">{label}</label>" in page.text, label


async def test_s3_region_endpoint_is_in_the_main_form_with_the_ibm_cos_hint(admin: Browser) -> None:
    """The seed's six S3 fields, region endpoint among them (IBM COS needs it), all outside "Advanced"."""
    page = await admin.get("/settings/storage")
    s3 = page.text[page.text.index('class="panel section-s3"') : page.text.index('class="panel section-swift"')]
    main, _, advanced = s3.partition("<details")
    for field in ("s3_rootdirectory", "s3_region", "s3_bucket", "s3_accesskey", "s3_secretkey", "s3_regionendpoint"):
        assert f'id="{field}"' in main, field
    assert "s3_regionendpoint" not in advanced
    hint = main[main.index('id="s3_regionendpoint-hint"') :].split("</p>", 1)[0]
    assert "IBM Cloud Object Storage" in hint
    assert "https://s3.eu-de.cloud-object-storage.appdomain.cloud" in hint


async def test_save_filesystem_then_test_and_a_failure(admin: Browser, tmp_path: Path) -> None:
    await admin.get("/settings/storage")
    root = tmp_path / "elsewhere"
    tested = await admin.post(
        "/settings/storage", {"type": "filesystem", "filesystem_rootdirectory": str(root), "op": "test"}
    )
    assert "Test passed" in tested.text
    saved = await admin.post(
        "/settings/storage", {"type": "filesystem", "filesystem_rootdirectory": str(root), "op": "save"}
    )
    assert saved.status_code == 303
    page = await admin.get("/settings/storage")
    assert f"Saved. Every worker now stores images in the directory {root}" in page.text
    assert "Images in this backend" in page.text  # the adoption's progress panel
    assert f'value="{root}"' in page.text
    failed = await admin.post(
        "/settings/storage", {"type": "filesystem", "filesystem_rootdirectory": "relative/dir", "op": "save"}
    )
    assert failed.status_code == 400
    assert "must be an absolute path" in failed.text
    assert 'value="relative/dir"' in failed.text
    audit = await admin.get("/admin/audit", params={"action": "settings.storage"})
    assert "settings.storage" in audit.text


async def test_a_failing_backend_keeps_the_form_but_not_the_secret(admin: Browser) -> None:
    await admin.get("/settings/storage")
    form = {
        "type": "cloud",
        "provider": "s3",
        "s3_bucket": "kept-bucket",
        "s3_accesskey": "AKIAEXAMPLE",
        "s3_secretkey": "very-secret-value",
        "s3_regionendpoint": "http://127.0.0.1:9",  # nothing listens there
        "s3_forcepathstyle": "on",
        "op": "save",
    }
    page = await admin.post("/settings/storage", form)
    assert page.status_code == 422
    assert "probe object failed" in page.text
    assert 'value="kept-bucket"' in page.text
    assert 'id="s3_forcepathstyle" name="s3_forcepathstyle" type="checkbox" checked' in page.text
    assert "very-secret-value" not in page.text
    assert "In use: <strong>Filesystem</strong>" in (await admin.get("/settings/storage")).text


async def test_yaml_upload(admin: Browser, tmp_path: Path) -> None:
    await admin.get("/settings/storage")
    block = f"storage:\n  filesystem:\n    rootdirectory: {tmp_path / 'from-yaml'}\n".encode()
    response = await admin.http.post(
        "/settings/storage/upload",
        data={"csrf": admin.csrf, "op": "save"},
        files={"file": ("config.yml", block, "text/yaml")},
    )
    assert response.status_code == 303
    assert str(tmp_path / "from-yaml") in (await admin.get("/settings/storage")).text
    bad = await admin.post("/settings/storage/upload", {"yaml": "storage:\n  nosuchdriver: {}\n", "op": "test"})
    assert bad.status_code == 400
    assert "invalid storage settings" in bad.text


async def test_pinned_by_the_config_file(tmp_path: Path) -> None:
    storage = parse_storage_block({"filesystem": {"rootdirectory": str(tmp_path / "pinned")}})
    async with running(tmp_path / "data", storage=storage, storage_source="config file") as registry:
        admin = browser_of(registry)
        async with admin.http:
            await admin.login()
            page = await admin.get("/settings/storage")
            assert "Storage is set by the <strong>config file</strong>" in page.text
            assert '<fieldset disabled class="plain">' in page.text
            refused = await admin.post("/settings/storage", {"type": "filesystem", "op": "save"})
            assert refused.status_code == 409
            assert "change it there" in refused.text


async def test_migrate_to_this_backend_shows_progress_and_the_report(
    admin: Browser, registry: Registry, tmp_path: Path
) -> None:
    await push_image(registry.client, "acme/app", "v1")
    await admin.get("/settings/storage")
    root = tmp_path / "moved"
    started = await admin.post(
        "/settings/storage", {"type": "filesystem", "filesystem_rootdirectory": str(root), "op": "migrate"}
    )
    assert started.status_code == 303, started.text
    page = await admin.get("/settings/storage")
    assert f"Migration started: new pushes go to the directory {root} now" in page.text
    assert 'id="migration" data-refresh="/settings/storage/migration"' in page.text
    services: Services = registry.asgi.state.services
    await services.migrations.join()
    panel = await admin.get("/settings/storage/migration")
    assert panel.status_code == 200
    assert panel.text.lstrip().startswith("<section"), "the panel alone, for the page's script to swap in"
    assert "data-active" not in panel.text  # done: the script stops refreshing it
    assert '<strong id="migration-state">done</strong>' in panel.text
    assert "4 blobs copied" in panel.text
    assert "The old backend was left as it was" in panel.text
    assert (root / "docker/registry/v2/repositories/acme/app/_manifests/tags/v1/current/link").exists()
    again = await admin.post(
        "/settings/storage", {"type": "filesystem", "filesystem_rootdirectory": str(root), "op": "save"}
    )
    assert again.status_code == 303  # a save after the migration is an ordinary switch


async def test_a_running_adoption_shows_its_progress_and_the_page_refreshes(admin: Browser, registry: Registry) -> None:
    services: Services = registry.asgi.state.services
    index = services.switch._index
    assert await index.leases.acquire(LEASE, "another-node:1:x", timedelta(minutes=1))  # it runs elsewhere
    adoption = await index.adoptions.start(0)  # as a switch begins it
    await index.adoptions.progress(adoption, {"repositories": 3, "manifests": 1234, "tags": 7})
    page = await admin.get("/settings/storage")
    assert "indexing" in page.text
    assert "1,234 manifests" in page.text
    assert '<meta http-equiv="refresh" content="3">' in page.text


async def test_a_migration_under_way_can_be_cancelled_from_its_panel(
    admin: Browser, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migration, "SETTLE_SECONDS", 0)
    await push_image(registry.client, "acme/app", "v1")
    services: Services = registry.asgi.state.services
    target = StorageSettings(filesystem=FilesystemStorage(rootdirectory=tmp_path / "abandoned"))
    started = await services.migrations.start(Actor.system(), target)  # recorded and switched; not copied yet
    panel = await admin.get("/settings/storage/migration")
    assert 'action="/settings/storage/migration/cancel"' in panel.text
    assert "data-confirm=" in panel.text
    await admin.get("/settings/storage")  # the form's CSRF token
    cancelled = await admin.post("/settings/storage/migration/cancel", {})
    assert cancelled.status_code == 303, cancelled.text
    await services.migrations.join()
    page = await admin.get("/settings/storage")
    assert f"Cancelling migration {started.id}: every worker goes back to the old backend" in page.text
    panel = await admin.get("/settings/storage/migration")
    assert '<strong id="migration-state">cancelled: back on the old backend</strong>' in panel.text
    assert "migration/cancel" not in panel.text  # nothing left to cancel
    again = await admin.post("/settings/storage/migration/cancel", {})
    assert again.status_code == 303
    assert "no storage migration is under way" in (await admin.get("/settings/storage")).text

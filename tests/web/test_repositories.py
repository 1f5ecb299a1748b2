"""Repository pages: search and pagination, tags with digest, size, platforms and who pushed them, deleting a
tag after confirmation, and what users without the permission see."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime

import httpx
import pytest

from tests.registry.conftest import (
    Registry,
    client_as,
    descriptor,
    index_manifest,
    push_image,
    put_manifest,
)
from trustyard import __version__
from trustyard.oci import mediatypes as mt
from trustyard.services import Services
from trustyard.services.actor import Actor
from trustyard.web import repositories

from .conftest import Browser, browser_of


async def test_empty_state(admin: Browser) -> None:
    page = await admin.get("/repositories")
    assert "There are no repositories you may pull yet." in page.text


def _listed(page: httpx.Response) -> list[str]:
    return re.findall(r'<th scope="row"><a href="/repositories/([^"]+)">', page.text)


async def test_search_and_pagination(admin: Browser, registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("team/app", "team/db", "other/tool"):
        await push_image(registry.client, name, "1", seed=name)
    monkeypatch.setattr(repositories, "PAGE", 2)
    first = await admin.get("/repositories")
    assert _listed(first) == ["other/tool", "team/app"]
    assert "last=team%2Fapp" in first.text
    second = await admin.get("/repositories", params={"last": "team/app"})
    assert _listed(second) == ["team/db"]
    assert "First page" in second.text
    assert _listed(await admin.get("/repositories", params={"q": "db"})) == ["team/db"]
    assert _listed(await admin.get("/repositories", params={"q": "team"})) == ["team/app", "team/db"]
    none = await admin.get("/repositories", params={"q": "zzz"})
    assert "has a name containing <strong>zzz</strong>" in none.text


async def test_list_shows_tag_count_size_and_last_push(admin: Browser, registry: Registry) -> None:
    shared = await push_image(registry.client, "team/app", "1.0", seed="a")
    await push_image(registry.client, "team/app", "latest", seed="a")  # the same image: its blobs count once
    other = await push_image(registry.client, "team/app", "2.0", seed="b")
    await push_image(registry.client, "team/db", "1", seed="c")
    size = sum(len(blob) for image in (shared, other) for blob in (image.config, *image.layers))
    page = await admin.get("/repositories")
    row = _row(page, "team/app")
    assert '<td data-label="Tags" class="number">3</td>' in row
    assert f'<td data-label="Size" class="number">{size} Bytes</td>' in row
    assert re.search(r'<td data-label="Last push"><time datetime="\d{4}-\d\d-\d\dT[\d:]{8}Z">', row)
    assert '<td data-label="Tags" class="number">1</td>' in _row(page, "team/db")


def _row(page: httpx.Response, name: str) -> str:
    found = re.search(rf'<tr>\s*<th scope="row"><a href="/repositories/{name}">.*?</tr>', page.text, re.S)
    assert found, f"no row for {name}"
    return found.group(0)


async def test_every_page_shows_the_version_and_pull_address(browser: Browser, admin_browser: Browser) -> None:
    for page in (await browser.get("/login"), await admin_browser.get("/repositories")):
        footer = page.text.split('<footer class="site-footer">')[1]
        assert f"trustyard {__version__}" in footer
        assert "<code>registry.test</code>" in footer


async def test_tags_show_digest_size_platforms_and_pusher(admin: Browser, registry: Registry) -> None:
    image = await push_image(registry.client, "team/app", "1.0", seed="a")
    other = await push_image(registry.client, "team/app", "@", seed="b")
    index = index_manifest([(mt.OCI_MANIFEST, image.manifest), (mt.OCI_MANIFEST, other.manifest)])
    assert (await put_manifest(registry.client, "team/app", "multi", index, mt.OCI_INDEX)).status_code == 201
    page = await admin.get("/repositories/team/app")
    assert page.status_code == 200
    assert image.digest[:19] in page.text
    assert "linux/arch0, linux/arch1" in page.text
    assert page.text.count("by admin") == 2
    size = len(image.manifest) + sum(d["size"] for d in [descriptor("", image.config)]) + sum(map(len, image.layers))
    assert f"{size} Bytes" in page.text
    assert "docker pull registry.test/team/app:1.0" in page.text


async def test_delete_a_tag_after_confirming(admin: Browser, registry: Registry) -> None:
    await push_image(registry.client, "team/app", "1.0")
    confirm = await admin.get("/repositories/team/app/-/tags/1.0/delete")
    assert "Delete the tag 1.0?" in confirm.text
    response = await admin.post("/repositories/team/app/-/tags/1.0/delete")
    assert response.status_code == 303
    page = await admin.get(response.headers["location"])
    assert "Deleted the tag 1.0 from team/app." in page.text
    assert "This repository has no tags." in page.text
    assert (await registry.client.get("/v2/team/app/manifests/1.0")).status_code == 404
    audit = await admin.get("/admin/audit", params={"action": "manifest.delete"})
    assert "team/app" in audit.text


async def test_readers_see_no_delete_and_cannot_delete(admin: Browser, registry: Registry) -> None:
    await push_image(registry.client, "team/app", "1.0")
    await admin.get("/admin/users")
    await admin.post("/admin/users", {"name": "reader", "password": "reader-password"})
    await admin.get("/admin/grants")
    await admin.post("/admin/grants", {"target": "team/app", "role": "read", "kind": "user", "subject": "reader"})
    reader = browser_of(registry)
    async with reader.http:
        await reader.login("reader", "reader-password")
        page = await reader.get("/repositories/team/app")
        assert page.status_code == 200
        assert "1.0" in page.text
        assert "Delete tag" not in page.text
        assert "Make public" not in page.text
        response = await reader.post("/repositories/team/app/-/tags/1.0/delete")
        assert response.status_code == 403
        assert "may not delete team/app" in response.text
        assert (await reader.get("/admin/users")).status_code == 403
        assert (await reader.get("/settings/storage")).status_code == 403
        assert "Users" not in (await reader.get("/repositories")).text.split("</nav>")[0]
    client = client_as(registry, "reader", "reader-password")
    async with client:
        assert (await client.get("/v2/team/app/manifests/1.0")).status_code == 200


async def test_visibility(admin: Browser, registry: Registry) -> None:
    await push_image(registry.client, "team/app", "1.0")
    await admin.get("/repositories/team/app")
    response = await admin.post("/repositories/team/app/-/visibility", {"public": "true"})
    page = await admin.get(response.headers["location"])
    assert "team/app is now public" in page.text
    anonymous = client_as(registry)
    async with anonymous:
        assert (await anonymous.get("/v2/team/app/manifests/1.0")).status_code in (200, 401)


async def test_unknown_repository(admin: Browser) -> None:
    page = await admin.get("/repositories/no/such")
    assert page.status_code == 404
    assert "not known to this registry" in page.text


async def test_after_a_reindex_pushed_is_when_storage_wrote_the_tag(admin: Browser, registry: Registry) -> None:
    """A reindex (or a storage switch, which reindexes) knows no pusher, but storage knows when each tag link
    was written: the page shows that time, not the reindex's, and says the pusher was not recorded."""
    await push_image(registry.client, "team/app", "1.0")
    pushed = datetime(2024, 3, 5, 6, 7, tzinfo=UTC).timestamp()
    tag_link = registry.repositories_root / "team/app/_manifests/tags/1.0/current/link"
    os.utime(tag_link, (pushed, pushed))
    services: Services = registry.asgi.state.services
    await services.storage._index.clear()
    report = await services.storage.reindex(Actor.system())
    assert report.tags == 1
    page = await admin.get("/repositories/team/app")
    assert '<time datetime="2024-03-05T06:07:00Z">2024-03-05 06:07 UTC</time> by (not recorded)' in page.text

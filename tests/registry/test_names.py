"""Repository names and tags outside the spec's grammar are refused on every route, creating nothing."""

from __future__ import annotations

import httpx
import pytest

from trustyard.oci import mediatypes as mt

from .conftest import Registry, catalog, digest_of, error_code, push_image, put_manifest

BAD_NAMES = [
    "a/%2E%2E/b",  # ".." component (percent-encoded so the client does not resolve it)
    "%2E%2E",
    "a/%2E/b",
    "App",
    "team/App",
    "a//b",
    "a/",
    "-a",
    "a-",
    "a.-b",
    "a___b",
    "a%20b",
    "a:b",
    "x" * 256,
    "/".join(["abcdefghij"] * 23) + "/abcdefg",  # 260 characters in valid components
]
DIGEST = digest_of(b"data")


def routes(name: str) -> list[tuple[str, str, dict[str, str]]]:
    return [
        ("POST", f"/v2/{name}/blobs/uploads/", {}),
        ("POST", f"/v2/{name}/blobs/uploads/", {"digest": DIGEST}),
        ("POST", f"/v2/{name}/blobs/uploads/", {"mount": DIGEST, "from": "app"}),
        ("PATCH", f"/v2/{name}/blobs/uploads/00000000-0000-0000-0000-000000000000", {}),
        ("PUT", f"/v2/{name}/blobs/uploads/00000000-0000-0000-0000-000000000000", {"digest": DIGEST}),
        ("GET", f"/v2/{name}/blobs/uploads/00000000-0000-0000-0000-000000000000", {}),
        ("GET", f"/v2/{name}/blobs/{DIGEST}", {}),
        ("DELETE", f"/v2/{name}/blobs/{DIGEST}", {}),
        ("PUT", f"/v2/{name}/manifests/v1", {}),
        ("GET", f"/v2/{name}/manifests/v1", {}),
        ("DELETE", f"/v2/{name}/manifests/v1", {}),
        ("GET", f"/v2/{name}/tags/list", {}),
        ("GET", f"/v2/{name}/referrers/{DIGEST}", {}),
    ]


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_invalid_name_is_refused_everywhere(registry: Registry, name: str) -> None:
    client = registry.client
    image = await push_image(client, "app", "v1")
    for method, path, params in routes(name):
        content = image.manifest if "manifests" in path else b"data"
        response = await client.request(method, path, params=params, content=content)
        assert response.status_code == 400, (method, path, response.text)
        assert error_code(response) == "NAME_INVALID", (method, path)
    assert await catalog(client) == ["app"]
    assert sorted(p.name for p in registry.repositories_root.iterdir()) == ["app"]


async def test_mount_from_an_invalid_name(client: httpx.AsyncClient) -> None:
    response = await client.post("/v2/app/blobs/uploads/", params={"mount": DIGEST, "from": "Bad"})
    assert response.status_code == 400
    assert error_code(response) == "NAME_INVALID"


@pytest.mark.parametrize("name", ["a", "a/b/c", "a.b_c__d--e", "0", "x" * 255, "a/" + "b" * 253])
async def test_valid_names(client: httpx.AsyncClient, name: str) -> None:
    image = await push_image(client, name, "v1")
    response = await client.get(f"/v2/{name}/manifests/v1")
    assert response.status_code == 200
    assert response.headers["docker-content-digest"] == image.digest
    assert await catalog(client) == [name]


BAD_TAGS = [".hidden", "-dash", "a" * 129, "a+b", "a%3Bb", "t%C3%A9"]


@pytest.mark.parametrize("tag", BAD_TAGS)
async def test_invalid_tag(registry: Registry, tag: str) -> None:
    client = registry.client
    image = await push_image(client, "app", "@")
    for method in ("PUT", "GET", "HEAD", "DELETE"):
        response = await client.request(
            method, f"/v2/app/manifests/{tag}", content=image.manifest, headers={"Content-Type": mt.OCI_MANIFEST}
        )
        assert response.status_code == 400, (method, response.text)
        if method != "HEAD":
            assert error_code(response) == "TAG_INVALID"
    assert (await client.get("/v2/app/tags/list")).json()["tags"] == []
    assert not (registry.repositories_root / "app" / "_manifests" / "tags").exists()


@pytest.mark.parametrize("tag", [".hidden", "-dash", "a" * 129])
async def test_invalid_query_tag_stores_nothing(client: httpx.AsyncClient, tag: str) -> None:
    image = await push_image(client, "app", "@")
    response = await put_manifest(client, "app", "good", image.manifest, tag=["fine", tag])
    assert response.status_code == 400
    assert error_code(response) == "TAG_INVALID"
    assert (await client.get("/v2/app/tags/list")).json()["tags"] == []


@pytest.mark.parametrize("tag", ["_under", "A", "a" * 128, "1.0.0-rc.1_b"])
async def test_valid_tags(client: httpx.AsyncClient, tag: str) -> None:
    image = await push_image(client, "app", tag)
    response = await client.get(f"/v2/app/manifests/{tag}")
    assert response.headers["docker-content-digest"] == image.digest

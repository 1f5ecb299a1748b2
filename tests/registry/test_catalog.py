"""``/v2/_catalog``: repositories holding manifests, sorted, paginated like tags."""

from __future__ import annotations

import httpx
import pytest

from .conftest import catalog, error_code, push_blob, push_image, start_upload

NAMES = ["zeta", "alpha", "team/app", "team/app/sub", "b.c", "m_n"]


@pytest.fixture
async def repositories(client: httpx.AsyncClient) -> list[str]:
    for name in NAMES:
        await push_image(client, name, "v1")
    return sorted(NAMES)


async def test_empty_catalog(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2/_catalog")
    assert response.status_code == 200
    assert response.json() == {"repositories": []}


async def test_catalog_is_sorted(client: httpx.AsyncClient, repositories: list[str]) -> None:
    response = await client.get("/v2/_catalog")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"repositories": repositories}
    assert "link" not in response.headers


async def test_repositories_without_manifests_are_not_listed(client: httpx.AsyncClient) -> None:
    await push_blob(client, "blobs-only", b"data")
    await start_upload(client, "upload-only")
    assert await catalog(client) == []


async def test_pagination(client: httpx.AsyncClient, repositories: list[str]) -> None:
    response = await client.get("/v2/_catalog", params={"n": 2})
    assert response.json()["repositories"] == repositories[:2]
    assert response.headers["link"] == f'</v2/_catalog?n=2&last={repositories[1]}>; rel="next"'
    seen = list(response.json()["repositories"])
    link = response.headers["link"]
    while link:
        response = await client.get(link[1 : link.index(">")])
        assert response.status_code == 200
        page = response.json()["repositories"]
        assert 0 < len(page) <= 2
        seen += page
        link = response.headers.get("link", "")
    assert seen == repositories


async def test_link_escapes_names_with_slashes(client: httpx.AsyncClient, repositories: list[str]) -> None:
    index = repositories.index("team/app")
    response = await client.get("/v2/_catalog", params={"n": index + 1})
    assert response.json()["repositories"][-1] == "team/app"
    assert response.headers["link"] == f'</v2/_catalog?n={index + 1}&last=team%2Fapp>; rel="next"'
    following = await client.get("/v2/_catalog", params={"n": 100, "last": "team/app"})
    assert following.json()["repositories"] == repositories[index + 1 :]


async def test_last_and_n_zero(client: httpx.AsyncClient, repositories: list[str]) -> None:
    after = await client.get("/v2/_catalog", params={"last": repositories[-2]})
    assert after.json()["repositories"] == repositories[-1:]
    none = await client.get("/v2/_catalog", params={"n": 0})
    assert none.status_code == 200
    assert none.json() == {"repositories": []}


@pytest.mark.parametrize("n", ["-1", "x"])
async def test_bad_n_is_400(client: httpx.AsyncClient, n: str) -> None:
    response = await client.get("/v2/_catalog", params={"n": n})
    assert response.status_code == 400
    assert error_code(response) == "PAGINATION_NUMBER_INVALID"

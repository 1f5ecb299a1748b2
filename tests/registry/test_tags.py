"""``/v2/<name>/tags/list``: sorted, paginated with ``n``/``last`` and a ``Link`` to the next page."""

from __future__ import annotations

import httpx
import pytest

from .conftest import error_code, push_image, put_manifest

TAGS = ["v1", "latest", "1.0", "Alpha", "beta_2", "a-b.c"]


@pytest.fixture
async def tagged(client: httpx.AsyncClient) -> list[str]:
    image = await push_image(client, "team/app", "@")
    for tag in TAGS:
        assert (await put_manifest(client, "team/app", tag, image.manifest)).status_code == 201
    return sorted(TAGS)


async def test_tags_are_sorted(client: httpx.AsyncClient, tagged: list[str]) -> None:
    response = await client.get("/v2/team/app/tags/list")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"name": "team/app", "tags": tagged}
    assert "link" not in response.headers


async def test_pagination(client: httpx.AsyncClient, tagged: list[str]) -> None:
    response = await client.get("/v2/team/app/tags/list", params={"n": 2})
    assert response.status_code == 200
    assert response.json()["tags"] == tagged[:2]
    assert response.headers["link"] == f'</v2/team/app/tags/list?n=2&last={tagged[1]}>; rel="next"'
    seen = list(response.json()["tags"])
    link = response.headers["link"]
    while link:
        url = link[1 : link.index(">")]
        response = await client.get(url)
        assert response.status_code == 200
        page = response.json()["tags"]
        assert 0 < len(page) <= 2
        seen += page
        link = response.headers.get("link", "")
    assert seen == tagged


async def test_last_alone(client: httpx.AsyncClient, tagged: list[str]) -> None:
    response = await client.get("/v2/team/app/tags/list", params={"last": tagged[2]})
    assert response.json()["tags"] == tagged[3:]
    assert "link" not in response.headers


async def test_exact_last_page_has_no_link(client: httpx.AsyncClient, tagged: list[str]) -> None:
    response = await client.get("/v2/team/app/tags/list", params={"n": len(tagged)})
    assert response.json()["tags"] == tagged
    assert "link" not in response.headers
    after = await client.get("/v2/team/app/tags/list", params={"n": 2, "last": tagged[-1]})
    assert after.json()["tags"] == []
    assert "link" not in after.headers


async def test_n_zero_is_an_empty_page(client: httpx.AsyncClient, tagged: list[str]) -> None:
    response = await client.get("/v2/team/app/tags/list", params={"n": 0})
    assert response.status_code == 200
    assert response.json() == {"name": "team/app", "tags": []}


@pytest.mark.parametrize("n", ["-1", "abc", "1.5", "0x10"])
async def test_bad_n_is_400(client: httpx.AsyncClient, tagged: list[str], n: str) -> None:
    response = await client.get("/v2/team/app/tags/list", params={"n": n})
    assert response.status_code == 400
    assert error_code(response) == "PAGINATION_NUMBER_INVALID"


async def test_unknown_repository_is_404_name_unknown(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2/nobody/tags/list")
    assert response.status_code == 404
    assert error_code(response) == "NAME_UNKNOWN"


async def test_untagged_repository_lists_no_tags(client: httpx.AsyncClient) -> None:
    await push_image(client, "app", "@")
    response = await client.get("/v2/app/tags/list")
    assert response.status_code == 200
    assert response.json() == {"name": "app", "tags": []}

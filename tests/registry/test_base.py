"""``GET /v2/`` and what every route answers to a method it does not support."""

from __future__ import annotations

import httpx
import pytest

from .conftest import error_code


async def test_version_check(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2/")
    assert response.status_code == 200
    assert response.headers["docker-distribution-api-version"] == "registry/2.0"
    assert response.json() == {}


async def test_every_response_carries_the_api_version(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2/nothing/manifests/latest")
    assert response.status_code == 404
    assert response.headers["docker-distribution-api-version"] == "registry/2.0"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v2/"),
        ("DELETE", "/v2/_catalog"),
        ("PATCH", "/v2/app/manifests/latest"),
        ("POST", "/v2/app/manifests/latest"),
        ("PUT", "/v2/app/blobs/sha256:" + "a" * 64),
        ("POST", "/v2/app/tags/list"),
        ("DELETE", "/v2/app/referrers/sha256:" + "a" * 64),
        ("PATCH", "/v2/app/blobs/uploads/"),
    ],
)
async def test_unsupported_method_is_405_with_an_error_body(client: httpx.AsyncClient, method: str, path: str) -> None:
    response = await client.request(method, path)
    assert response.status_code == 405
    assert error_code(response) == "UNSUPPORTED"
    assert method in response.json()["errors"][0]["message"]

"""``/v2/<name>/blobs/<digest>``: HEAD, GET (whole and ranged), DELETE."""

from __future__ import annotations

import httpx
import pytest

from trustyard.errors import RangeNotSatisfiable
from trustyard.registry.blobs import parse_range

from .conftest import digest_of, error_code, error_message, push_blob, push_image

DATA = bytes(range(256)) * 4  # 1024 bytes


async def test_head_blob(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "app", DATA)
    response = await client.head(f"/v2/app/blobs/{digest}")
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["docker-content-digest"] == digest
    assert response.content == b""


async def test_get_blob(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "app", DATA)
    response = await client.get(f"/v2/app/blobs/{digest}")
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["docker-content-digest"] == digest
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["accept-ranges"] == "bytes"


async def test_get_empty_blob(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "app", b"")
    response = await client.get(f"/v2/app/blobs/{digest}")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == "0"


@pytest.mark.parametrize(
    ("range_header", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=100-199", 100, 199),
        ("bytes=1000-", 1000, 1023),  # open range
        ("bytes=-24", 1000, 1023),  # suffix range
        ("bytes=1000-5000", 1000, 1023),  # end past the blob: clamped
        ("bytes=-5000", 0, 1023),  # suffix longer than the blob: all of it
        ("bytes=1023-1023", 1023, 1023),
    ],
)
async def test_range_get(client: httpx.AsyncClient, range_header: str, start: int, end: int) -> None:
    digest = await push_blob(client, "app", DATA)
    response = await client.get(f"/v2/app/blobs/{digest}", headers={"Range": range_header})
    assert response.status_code == 206
    assert response.content == DATA[start : end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert response.headers["content-length"] == str(end - start + 1)
    assert response.headers["docker-content-digest"] == digest


@pytest.mark.parametrize("range_header", ["bytes=1024-", "bytes=2000-3000", "bytes=1024-1024"])
async def test_range_outside_the_blob_is_416(client: httpx.AsyncClient, range_header: str) -> None:
    digest = await push_blob(client, "app", DATA)
    response = await client.get(f"/v2/app/blobs/{digest}", headers={"Range": range_header})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(DATA)}"


@pytest.mark.parametrize("range_header", ["bytes=500-0", "bytes=5000-10000", "bytes=-0"])
async def test_unsatisfiable_range_is_416_with_the_size(client: httpx.AsyncClient, range_header: str) -> None:
    digest = await push_blob(client, "app", DATA)
    response = await client.get(f"/v2/app/blobs/{digest}", headers={"Range": range_header})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(DATA)}"
    assert error_code(response) == "BLOB_UPLOAD_INVALID"
    assert range_header in error_message(response)


@pytest.mark.parametrize("range_header", ["bytes=abc", "items=0-9", "bytes=0-1,5-6", "bytes=--1", "0-9"])
async def test_range_that_does_not_parse_is_ignored(client: httpx.AsyncClient, range_header: str) -> None:
    """RFC 9110 §14.2: a server may ignore a Range it does not understand and send the whole blob."""
    digest = await push_blob(client, "app", DATA)
    response = await client.get(f"/v2/app/blobs/{digest}", headers={"Range": range_header})
    assert response.status_code == 200
    assert response.content == DATA
    assert "content-range" not in response.headers


async def test_unknown_blob_is_404_blob_unknown(client: httpx.AsyncClient) -> None:
    await push_blob(client, "app", DATA)
    missing = digest_of(b"never pushed")
    response = await client.get(f"/v2/app/blobs/{missing}")
    assert response.status_code == 404
    assert error_code(response) == "BLOB_UNKNOWN"
    head = await client.head(f"/v2/app/blobs/{missing}")
    assert head.status_code == 404
    assert head.content == b""


async def test_blob_of_another_repository_is_unknown(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "app", DATA)
    response = await client.get(f"/v2/other/blobs/{digest}")
    assert response.status_code == 404
    assert error_code(response) == "BLOB_UNKNOWN"


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:abc",  # too short
        "sha256:" + "A" * 64,  # uppercase hex
        "md5:" + "a" * 32,  # unsupported algorithm
        "notadigest",
        "sha512:" + "a" * 64,  # sha256 length for sha512
    ],
)
async def test_bad_digest_is_400_digest_invalid(client: httpx.AsyncClient, digest: str) -> None:
    response = await client.get(f"/v2/app/blobs/{digest}")
    assert response.status_code == 400
    assert error_code(response) == "DIGEST_INVALID"


async def test_delete_blob_then_it_is_unknown(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "app", DATA)
    response = await client.delete(f"/v2/app/blobs/{digest}")
    assert response.status_code == 202
    assert response.headers["docker-content-digest"] == digest
    assert (await client.head(f"/v2/app/blobs/{digest}")).status_code == 404
    again = await client.delete(f"/v2/app/blobs/{digest}")
    assert again.status_code == 404
    assert error_code(again) == "BLOB_UNKNOWN"


async def test_delete_blob_only_unlinks_it_from_that_repository(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "app", DATA)
    await push_blob(client, "other", DATA)
    assert (await client.delete(f"/v2/app/blobs/{digest}")).status_code == 202
    response = await client.get(f"/v2/other/blobs/{digest}")
    assert response.status_code == 200
    assert response.content == DATA


async def test_deleting_a_blob_a_manifest_uses_is_refused(client: httpx.AsyncClient) -> None:
    image = await push_image(client, "app", "v1")
    layer = digest_of(image.layers[0])
    response = await client.delete(f"/v2/app/blobs/{layer}")
    # 405 is among the answers the spec lists for a blob DELETE (202, 404, 405); 403 would say "not allowed".
    assert response.status_code == 405
    assert error_code(response) == "UNSUPPORTED"
    assert image.digest in error_message(response)
    assert response.json()["errors"][0]["detail"] == {"manifest": image.digest}
    assert (await client.get(f"/v2/app/blobs/{layer}")).content == image.layers[0]
    # Once the manifest is gone, the blob may go.
    assert (await client.delete(f"/v2/app/manifests/{image.digest}")).status_code == 202
    assert (await client.delete(f"/v2/app/blobs/{layer}")).status_code == 202


async def test_blob_survives_deleting_a_manifest_in_another_repository(client: httpx.AsyncClient) -> None:
    image = await push_image(client, "app", "v1")
    await push_image(client, "other", "v1")
    assert (await client.delete(f"/v2/other/manifests/{image.digest}")).status_code == 202
    config = digest_of(image.config)
    assert (await client.delete(f"/v2/app/blobs/{config}")).status_code == 405


# parse_range serves ranged reads that do not go through a local file (object stores).


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("bytes=0-9", (0, 9)),
        ("bytes=5-", (5, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-1000", (0, 99)),
        ("bytes=90-1000", (90, 99)),
    ],
)
def test_parse_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=9-5", "bytes=500-0", "bytes=-0"])
def test_parse_range_unsatisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable) as raised:
        parse_range(header, 100)
    assert raised.value.size == 100


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-5", "bytes=x-y", "bytes=5", "bytes=-", "bytes 0-5"])
def test_parse_range_ignores_what_it_cannot_parse(header: str) -> None:
    assert parse_range(header, 100) is None

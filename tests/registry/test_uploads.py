"""``/v2/<name>/blobs/uploads/``: sessions, monolithic and chunked pushes, mounts, cancel, failures."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ..asgi import http_scope
from .conftest import Registry, digest_of, error_code, error_message, push_blob, running, start_upload

DATA = b"0123456789abcdefghijklmnopqrstuvwxyz" * 100  # 3600 bytes
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


async def assert_blob(client: httpx.AsyncClient, repository: str, data: bytes, algorithm: str = "sha256") -> None:
    digest = digest_of(data, algorithm)
    response = await client.get(f"/v2/{repository}/blobs/{digest}")
    assert response.status_code == 200, response.text
    assert response.content == data
    assert response.headers["docker-content-digest"] == digest


async def assert_no_blob(client: httpx.AsyncClient, repository: str, digest: str) -> None:
    response = await client.head(f"/v2/{repository}/blobs/{digest}")
    assert response.status_code == 404


async def patch(client: httpx.AsyncClient, location: str, chunk: bytes, start: int | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/octet-stream"}
    if start is not None:
        headers["Content-Range"] = f"{start}-{start + len(chunk) - 1}"
    return await client.patch(location, content=chunk, headers=headers)


async def test_start_session(client: httpx.AsyncClient) -> None:
    response = await client.post("/v2/app/blobs/uploads/")
    assert response.status_code == 202
    upload_id = response.headers["docker-upload-uuid"]
    assert UUID.match(upload_id)
    assert response.headers["location"] == f"/v2/app/blobs/uploads/{upload_id}"
    assert response.headers["range"] == "0-0"
    assert response.content == b""


async def test_start_session_without_trailing_slash(client: httpx.AsyncClient) -> None:
    response = await client.post("/v2/app/blobs/uploads")
    assert response.status_code == 202
    assert response.headers["location"].startswith("/v2/app/blobs/uploads/")


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
async def test_monolithic_post(client: httpx.AsyncClient, algorithm: str) -> None:
    digest = digest_of(DATA, algorithm)
    response = await client.post("/v2/app/blobs/uploads/", params={"digest": digest}, content=DATA)
    assert response.status_code == 201
    assert response.headers["location"] == f"/v2/app/blobs/{digest}"
    assert response.headers["docker-content-digest"] == digest
    await assert_blob(client, "app", DATA, algorithm)


async def test_monolithic_post_of_an_empty_blob(client: httpx.AsyncClient) -> None:
    await push_blob(client, "app", b"")
    await assert_blob(client, "app", b"")


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
async def test_post_then_put_with_body(registry: Registry, algorithm: str) -> None:
    client = registry.client
    location = await start_upload(client, "app")
    digest = digest_of(DATA, algorithm)
    response = await client.put(location, params={"digest": digest}, content=DATA)
    assert response.status_code == 201
    assert response.headers["location"] == f"/v2/app/blobs/{digest}"
    assert response.headers["docker-content-digest"] == digest
    await assert_blob(client, "app", DATA, algorithm)
    assert registry.staging_files() == []
    # The session is over.
    status = await client.get(location)
    assert status.status_code == 404
    assert error_code(status) == "BLOB_UPLOAD_UNKNOWN"


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
async def test_chunked_upload(registry: Registry, algorithm: str) -> None:
    client = registry.client
    location = await start_upload(client, "app")
    first = await patch(client, location, DATA[:1000], start=0)
    assert first.status_code == 202
    assert first.headers["range"] == "0-999"
    assert first.headers["location"] == location
    assert first.headers["docker-upload-uuid"] == location.rsplit("/", 1)[1]
    second = await patch(client, first.headers["location"], DATA[1000:3000], start=1000)
    assert second.status_code == 202
    assert second.headers["range"] == "0-2999"
    digest = digest_of(DATA, algorithm)
    done = await client.put(second.headers["location"], params={"digest": digest}, content=DATA[3000:])
    assert done.status_code == 201
    assert done.headers["docker-content-digest"] == digest
    await assert_blob(client, "app", DATA, algorithm)
    assert registry.staging_files() == []


async def test_chunked_upload_without_content_range_and_empty_final_put(client: httpx.AsyncClient) -> None:
    location = await start_upload(client, "app")
    for i in range(0, len(DATA), 1000):
        response = await patch(client, location, DATA[i : i + 1000])
        assert response.status_code == 202
        assert response.headers["range"] == f"0-{min(i + 1000, len(DATA)) - 1}"
    done = await client.put(location, params={"digest": digest_of(DATA)})
    assert done.status_code == 201
    await assert_blob(client, "app", DATA)


async def test_upload_status(client: httpx.AsyncClient) -> None:
    location = await start_upload(client, "app")
    status = await client.get(location)
    assert status.status_code == 204
    assert status.headers["range"] == "0-0"
    assert status.headers["location"] == location
    await patch(client, location, DATA[:10], start=0)
    status = await client.get(location)
    assert status.status_code == 204
    assert status.headers["range"] == "0-9"
    assert status.headers["docker-upload-uuid"] == location.rsplit("/", 1)[1]


@pytest.mark.parametrize("start", [0, 5, 11, 100])
async def test_out_of_order_patch_is_416_with_the_current_range(client: httpx.AsyncClient, start: int) -> None:
    location = await start_upload(client, "app")
    await patch(client, location, DATA[:10], start=0)
    response = await patch(client, location, DATA[start : start + 10], start=start)
    assert response.status_code == 416
    assert response.headers["range"] == "0-9"
    assert response.headers["location"] == location
    assert response.headers["docker-upload-uuid"] == location.rsplit("/", 1)[1]
    assert error_code(response) == "BLOB_UPLOAD_INVALID"
    assert "starting at byte 10" in error_message(response)
    # The upload is unharmed: continue where it is.
    await patch(client, location, DATA[10:20], start=10)
    done = await client.put(location, params={"digest": digest_of(DATA[:20])})
    assert done.status_code == 201
    await assert_blob(client, "app", DATA[:20])


@pytest.mark.parametrize("start", [0, 5, 20])
async def test_out_of_order_final_put_is_416_with_the_current_range(client: httpx.AsyncClient, start: int) -> None:
    location = await start_upload(client, "app")
    await patch(client, location, DATA[:10], start=0)
    chunk = DATA[start : start + 10]
    response = await client.put(
        location,
        params={"digest": digest_of(DATA[:20])},
        content=chunk,
        headers={"Content-Range": f"{start}-{start + len(chunk) - 1}", "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 416
    assert response.headers["range"] == "0-9"
    assert response.headers["location"] == location
    assert error_code(response) == "BLOB_UPLOAD_INVALID"
    # Nothing was written: the right last chunk still completes the blob.
    response = await client.put(
        location,
        params={"digest": digest_of(DATA[:20])},
        content=DATA[10:20],
        headers={"Content-Range": "10-19", "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 201, response.text
    await assert_blob(client, "app", DATA[:20])


async def test_patch_whose_body_does_not_fill_its_content_range_is_refused(client: httpx.AsyncClient) -> None:
    location = await start_upload(client, "app")
    response = await client.patch(location, content=DATA[:5], headers={"Content-Range": "0-9"})
    assert response.status_code == 400
    assert error_code(response) == "SIZE_INVALID"
    assert (await client.get(location)).headers["range"] == "0-0"
    empty = await client.patch(location, content=b"", headers={"Content-Range": "0-9"})
    assert empty.status_code == 400
    assert error_code(empty) == "SIZE_INVALID"
    longer = await client.patch(location, content=DATA[:20], headers={"Content-Range": "0-9"})
    assert longer.status_code == 400
    assert error_code(longer) == "SIZE_INVALID"
    streamed = await client.patch(location, content=body(DATA[:3], DATA[3:5]), headers={"Content-Range": "0-9"})
    assert streamed.status_code == 400
    assert error_code(streamed) == "SIZE_INVALID"
    assert (await client.get(location)).headers["range"] == "0-0"
    # The refused bytes were discarded: the upload goes on from 0, and a bodiless PUT finishes it.
    assert (await patch(client, location, DATA[:10], start=0)).status_code == 202
    done = await client.put(location, params={"digest": digest_of(DATA[:10])})
    assert done.status_code == 201, done.text
    await assert_blob(client, "app", DATA[:10])


async def test_refused_chunk_then_bodiless_put(client: httpx.AsyncClient) -> None:
    location = await start_upload(client, "app")
    assert (await patch(client, location, DATA[:10], start=0)).status_code == 202
    short = await client.patch(location, content=DATA[10:15], headers={"Content-Range": "10-19"})
    assert short.status_code == 400
    done = await client.put(location, params={"digest": digest_of(DATA[:10])})
    assert done.status_code == 201, done.text
    await assert_blob(client, "app", DATA[:10])


async def body(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


@pytest.mark.parametrize("header", ["nonsense", "a-b", "10", "-5"])
async def test_malformed_content_range(client: httpx.AsyncClient, header: str) -> None:
    location = await start_upload(client, "app")
    response = await client.patch(location, content=b"x", headers={"Content-Range": header})
    assert response.status_code == 400
    assert error_code(response) == "BLOB_UPLOAD_INVALID"


async def test_cancel_upload(registry: Registry) -> None:
    client = registry.client
    location = await start_upload(client, "app")
    await patch(client, location, DATA[:100], start=0)
    response = await client.delete(location)
    assert response.status_code == 204
    for call in (client.get(location), client.patch(location, content=b"x"), client.delete(location)):
        gone = await call
        assert gone.status_code == 404
        assert error_code(gone) == "BLOB_UPLOAD_UNKNOWN"
    put = await client.put(location, params={"digest": digest_of(DATA[:100])})
    assert put.status_code == 404
    assert error_code(put) == "BLOB_UPLOAD_UNKNOWN"
    assert registry.staging_files() == []


async def test_unknown_upload_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2/app/blobs/uploads/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert error_code(response) == "BLOB_UPLOAD_UNKNOWN"


async def test_upload_of_another_repository_is_unknown(client: httpx.AsyncClient) -> None:
    location = await start_upload(client, "app")
    upload_id = location.rsplit("/", 1)[1]
    for response in (
        await client.get(f"/v2/other/blobs/uploads/{upload_id}"),
        await client.patch(f"/v2/other/blobs/uploads/{upload_id}", content=b"x"),
        await client.put(f"/v2/other/blobs/uploads/{upload_id}", params={"digest": digest_of(b"x")}),
    ):
        assert response.status_code == 404
        assert error_code(response) == "BLOB_UPLOAD_UNKNOWN"


async def test_put_with_wrong_digest_stores_nothing(registry: Registry) -> None:
    client = registry.client
    location = await start_upload(client, "app")
    await patch(client, location, DATA[:1000], start=0)
    claimed = digest_of(b"something else")
    response = await client.put(location, params={"digest": claimed}, content=DATA[1000:])
    assert response.status_code == 400
    assert error_code(response) == "DIGEST_INVALID"
    await assert_no_blob(client, "app", claimed)
    await assert_no_blob(client, "app", digest_of(DATA))
    assert registry.staging_files() == []
    assert not (registry.data_dir / "storage/docker/registry/v2/blobs/sha256").exists()


async def test_put_with_wrong_digest_of_a_resumed_session_stores_nothing(tmp_path: Path) -> None:
    # The hasher is gone after a restart: the staged bytes are re-read, and still checked.
    async with running(tmp_path) as first:
        location = await start_upload(first.client, "app")
        await patch(first.client, location, DATA[:1000], start=0)
    async with running(tmp_path) as second:
        response = await second.client.put(location, params={"digest": digest_of(DATA[:999])})
        assert response.status_code == 400
        assert error_code(response) == "DIGEST_INVALID"
        await assert_no_blob(second.client, "app", digest_of(DATA[:1000]))
        assert second.staging_files() == []


async def test_monolithic_post_with_wrong_digest_stores_nothing(registry: Registry) -> None:
    client = registry.client
    claimed = digest_of(b"something else")
    response = await client.post("/v2/app/blobs/uploads/", params={"digest": claimed}, content=DATA)
    assert response.status_code == 400
    assert error_code(response) == "DIGEST_INVALID"
    await assert_no_blob(client, "app", claimed)
    await assert_no_blob(client, "app", digest_of(DATA))
    assert registry.staging_files() == []


@pytest.mark.parametrize("query", [{}, {"digest": "sha256:short"}])
async def test_put_without_a_valid_digest_is_400_and_the_session_goes_on(
    client: httpx.AsyncClient, query: dict[str, str]
) -> None:
    location = await start_upload(client, "app")
    await patch(client, location, DATA[:10], start=0)
    response = await client.put(location, params=query)
    assert response.status_code == 400
    assert error_code(response) == "DIGEST_INVALID"
    done = await client.put(location, params={"digest": digest_of(DATA[:10])})
    assert done.status_code == 201


async def test_upload_survives_a_restart(tmp_path: Path) -> None:
    async with running(tmp_path) as first:
        location = await start_upload(first.client, "app")
        assert (await patch(first.client, location, DATA[:1000], start=0)).status_code == 202
    async with running(tmp_path) as second:
        status = await second.client.get(location)
        assert status.status_code == 204
        assert status.headers["range"] == "0-999"
        assert (await patch(second.client, location, DATA[1000:2000], start=1000)).status_code == 202
        done = await second.client.put(location, params={"digest": digest_of(DATA)}, content=DATA[2000:])
        assert done.status_code == 201
        await assert_blob(second.client, "app", DATA)
        assert second.staging_files() == []


async def test_cross_repository_mount(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "source", DATA)
    response = await client.post("/v2/target/blobs/uploads/", params={"mount": digest, "from": "source"})
    assert response.status_code == 201
    assert response.headers["location"] == f"/v2/target/blobs/{digest}"
    assert response.headers["docker-content-digest"] == digest
    await assert_blob(client, "target", DATA)


@pytest.mark.parametrize("source", ["empty", "nowhere"])
async def test_mount_falls_back_to_a_session(client: httpx.AsyncClient, source: str) -> None:
    await push_blob(client, "empty", b"another blob")
    digest = digest_of(DATA)
    response = await client.post("/v2/target/blobs/uploads/", params={"mount": digest, "from": source})
    assert response.status_code == 202
    assert response.headers["range"] == "0-0"
    location = response.headers["location"]
    assert location.startswith("/v2/target/blobs/uploads/")
    await assert_no_blob(client, "target", digest)
    done = await client.put(location, params={"digest": digest}, content=DATA)
    assert done.status_code == 201
    await assert_blob(client, "target", DATA)


async def test_mount_without_from_finds_a_repository_holding_the_blob(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "holder", DATA)
    response = await client.post("/v2/target/blobs/uploads/", params={"mount": digest})
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/v2/target/blobs/{digest}"
    await assert_blob(client, "target", DATA)
    missing = await client.post("/v2/other/blobs/uploads/", params={"mount": digest_of(b"nowhere")})
    assert missing.status_code == 202  # no repository holds it: an ordinary session
    assert missing.headers["location"].startswith("/v2/other/blobs/uploads/")


async def test_mount_with_an_invalid_digest(client: httpx.AsyncClient) -> None:
    response = await client.post("/v2/target/blobs/uploads/", params={"mount": "sha256:xyz", "from": "a"})
    assert response.status_code == 400
    assert error_code(response) == "DIGEST_INVALID"


# A client that goes away mid-body: nothing becomes visible, and a session stays usable.


async def failing_body(data: bytes) -> AsyncIterator[bytes]:
    yield data
    raise ConnectionResetError("client went away")


async def test_monolithic_post_that_fails_mid_body_leaves_nothing(registry: Registry) -> None:
    client = registry.client
    digest = digest_of(DATA)
    with pytest.raises(ConnectionResetError):
        await client.post("/v2/app/blobs/uploads/", params={"digest": digest}, content=failing_body(DATA[:100]))
    await assert_no_blob(client, "app", digest)
    assert registry.staging_files() == []


async def asgi_disconnect(registry: Registry, method: str, path: str, query: str, chunk: bytes) -> None:
    """Send ``chunk`` of a longer body, then the ASGI disconnect a server sends when the client goes away."""
    messages: list[dict[str, object]] = [
        {"type": "http.request", "body": chunk, "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, object]] = []
    token = await registry.token("repository:app:pull,push")

    async def receive() -> dict[str, object]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    headers = [
        (b"host", b"registry.test"),
        (b"content-length", b"100000"),
        (b"authorization", f"Bearer {token}".encode()),
    ]
    scope = http_scope(method, path, headers, query=query.encode())
    await registry.asgi(scope, receive, send)  # a disconnect is normal: answered, never raised (no 500)
    assert sent[0]["status"] == 400
    assert b"BLOB_UPLOAD_INVALID" in b"".join(m.get("body", b"") for m in sent)  # type: ignore[misc]


async def test_monolithic_post_disconnect_leaves_nothing(registry: Registry) -> None:
    digest = digest_of(DATA)
    await asgi_disconnect(registry, "POST", "/v2/app/blobs/uploads/", f"digest={digest}", DATA[:100])
    await assert_no_blob(registry.client, "app", digest)
    assert registry.staging_files() == []
    assert not (registry.data_dir / "storage/docker/registry/v2/blobs/sha256").exists()


async def test_patch_disconnect_keeps_the_session_as_it_was(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    client = registry.client
    location = await start_upload(client, "app")
    await patch(client, location, DATA[:1000], start=0)
    with caplog.at_level(logging.INFO):
        await asgi_disconnect(registry, "PATCH", location, "", b"garbage that must not stay")
    assert "request body ended before it was complete" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # a client going away is normal
    assert (await client.get(location)).headers["range"] == "0-999"
    done = await client.put(location, params={"digest": digest_of(DATA)}, content=DATA[1000:])
    assert done.status_code == 201
    await assert_blob(client, "app", DATA)


async def test_put_disconnect_keeps_the_blob_invisible(registry: Registry) -> None:
    client = registry.client
    location = await start_upload(client, "app")
    await patch(client, location, DATA[:1000], start=0)
    digest = digest_of(DATA)
    await asgi_disconnect(registry, "PUT", location, f"digest={digest}", DATA[1000:1100])
    await assert_no_blob(client, "app", digest)
    assert (await client.get(location)).headers["range"] == "0-999"


# Many pushes at once.


async def test_concurrent_monolithic_uploads_of_the_same_blob(registry: Registry) -> None:
    client = registry.client
    repositories = [f"repo{i % 4}" for i in range(24)]
    digests = await asyncio.gather(*(push_blob(client, name, DATA) for name in repositories))
    assert set(digests) == {digest_of(DATA)}
    for name in sorted(set(repositories)):
        await assert_blob(client, name, DATA)
    assert registry.staging_files() == []


async def test_concurrent_monolithic_uploads_of_different_blobs(registry: Registry) -> None:
    client = registry.client
    blobs = [f"blob number {i}".encode() * (i + 1) for i in range(24)]
    await asyncio.gather(*(push_blob(client, "app", blob) for blob in blobs))
    for blob in blobs:
        await assert_blob(client, "app", blob)
    assert registry.staging_files() == []


async def test_concurrent_chunked_uploads(registry: Registry) -> None:
    client = registry.client
    blobs = [f"chunked blob {i} ".encode() * 300 for i in range(12)]

    async def push(blob: bytes) -> None:
        location = await start_upload(client, "app")
        for start in range(0, len(blob), 1024):
            response = await patch(client, location, blob[start : start + 1024], start=start)
            assert response.status_code == 202, response.text
            location = response.headers["location"]
        done = await client.put(location, params={"digest": digest_of(blob)})
        assert done.status_code == 201, done.text

    await asyncio.gather(*(push(blob) for blob in blobs))
    for blob in blobs:
        await assert_blob(client, "app", blob)
    assert registry.staging_files() == []


async def test_racing_patches_cannot_publish_bytes_under_another_digest(registry: Registry) -> None:
    """Two PATCHes at the same offset of one session: the loser's bytes must never pass as the winner's."""
    client = registry.client
    location = await start_upload(client, "app")
    winner, loser = b"a" * 64, b"b" * 64
    winner_streaming, loser_opened, loser_may_send = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def winner_body() -> AsyncIterator[bytes]:
        winner_streaming.set()
        yield winner
        await loser_opened.wait()  # the loser has read the session and opened its part

    async def loser_body() -> AsyncIterator[bytes]:
        loser_opened.set()
        await loser_may_send.wait()
        yield loser

    winning = asyncio.create_task(client.patch(location, content=winner_body()))
    await winner_streaming.wait()
    losing = asyncio.create_task(client.patch(location, content=loser_body()))
    won = await winning
    assert won.status_code == 202
    loser_may_send.set()
    lost = await losing
    assert lost.status_code in (202, 416)
    done = await client.put(location, params={"digest": digest_of(winner)})
    if done.status_code == 201:
        await assert_blob(client, "app", winner)
    else:
        assert error_code(done) in ("DIGEST_INVALID", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN")
        await assert_no_blob(client, "app", digest_of(winner))

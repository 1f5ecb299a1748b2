"""Upload rules checked on the service itself (in-memory driver): Content-Range parsing and enforcement."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from tests.services.wiring import wire
from trustyard.errors import (
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    Denied,
    DigestInvalid,
    RangeInvalid,
    SizeInvalid,
    StorageUnavailable,
)
from trustyard.oci.digest import Digest, Hasher
from trustyard.oci.names import RepositoryName
from trustyard.services import Services
from trustyard.services.actor import Actor, Credential
from trustyard.services.blobs import BlobInfo
from trustyard.services.uploads import ContentRange, parse_content_range
from trustyard.storage.driver import Part, UploadState
from trustyard.storage.memory import MemoryDriver

ACTOR = Actor.system()
REPO = RepositoryName.parse("app")


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("0-9", ContentRange(0, 9)),
        (" 10-19 ", ContentRange(10, 19)),
        ("bytes 0-1023/*", ContentRange(0, 1023)),
        ("bytes 5-5/100", ContentRange(5, 5)),
    ],
)
def test_parse_content_range(header: str, expected: ContentRange) -> None:
    assert parse_content_range(header) == expected


@pytest.mark.parametrize("header", ["", "5", "-5", "a-b", "0-", "bytes */100"])
def test_parse_content_range_refuses(header: str) -> None:
    with pytest.raises(BlobUploadInvalid):
        parse_content_range(header)


def test_content_range_ending_before_it_starts() -> None:
    with pytest.raises(RangeInvalid):
        parse_content_range("10-5")


async def test_chunk_shorter_or_longer_than_its_range_is_discarded(services: Services) -> None:
    uploads = services.uploads
    status = await uploads.start(ACTOR, REPO)
    await uploads.append(ACTOR, REPO, status.id, chunks(b"abc"), ContentRange(0, 2))
    for body in ((b"de",), (b"defg", b"hi"), ()):
        with pytest.raises(SizeInvalid) as caught:
            await uploads.append(ACTOR, REPO, status.id, chunks(*body), ContentRange(3, 5))
        assert caught.value.detail == {"size": 3}
    assert (await uploads.status(ACTOR, REPO, status.id)).size == 3
    await uploads.append(ACTOR, REPO, status.id, chunks(b"d", b"ef"), ContentRange(3, 5))
    info = await uploads.complete(ACTOR, REPO, status.id, Digest.of(b"abcdef"))
    assert info.size == 6
    assert (await services.blobs.stat(ACTOR, REPO, Digest.of(b"abcdef"))).size == 6


async def test_out_of_order_chunk_reports_the_current_size(services: Services) -> None:
    uploads = services.uploads
    status = await uploads.start(ACTOR, REPO)
    await uploads.append(ACTOR, REPO, status.id, chunks(b"abc"))
    with pytest.raises(RangeInvalid) as caught:
        await uploads.append(ACTOR, REPO, status.id, chunks(b"x"), ContentRange(4, 4))
    assert caught.value.detail == {"size": 3}


async def test_session_completed_by_another_process_is_rehashed(services: Services) -> None:
    uploads = services.uploads
    status = await uploads.start(ACTOR, REPO)
    await uploads.append(ACTOR, REPO, status.id, chunks(b"abc"))
    with pytest.raises(DigestInvalid):
        await uploads.complete(ACTOR, REPO, status.id, Digest.of(b"abd"), chunks(b"d"))
    with pytest.raises(BlobUnknown):
        await services.blobs.stat(ACTOR, REPO, Digest.of(b"abcd"))


async def test_sha512_session(services: Services) -> None:
    uploads = services.uploads
    status = await uploads.start(ACTOR, REPO)
    await uploads.append(ACTOR, REPO, status.id, chunks(b"abc"))
    digest = Digest.of(b"abcdef", "sha512")
    info = await uploads.complete(ACTOR, REPO, status.id, digest, chunks(b"def"))
    assert info.digest == digest
    assert (await services.blobs.stat(ACTOR, REPO, digest)).size == 6


async def test_the_running_hash_is_resumed_not_recomputed(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each PATCH saves the sha256 state with its part, so the PUT (on any worker) never re-reads the bytes.
    async def no_rehash(*_args: object) -> Hasher:
        raise AssertionError("the staged bytes were read back to hash them")

    monkeypatch.setattr(services.uploads, "_rehash", no_rehash)
    other_worker = wire(services.uploads._index, services.uploads._storage).uploads
    status = await services.uploads.start(ACTOR, REPO)
    await services.uploads.append(ACTOR, REPO, status.id, chunks(b"abc"))
    await other_worker.append(ACTOR, REPO, status.id, chunks(b"def"))
    monkeypatch.setattr(other_worker, "_rehash", no_rehash)
    info = await services.uploads.complete(ACTOR, REPO, status.id, Digest.of(b"abcdefgh"), chunks(b"gh"))
    assert info.digest == Digest.of(b"abcdefgh")


async def test_a_sha512_digest_is_checked_by_reading_back(services: Services) -> None:
    status = await services.uploads.start(ACTOR, REPO)
    await services.uploads.append(ACTOR, REPO, status.id, chunks(b"abc"))
    info = await services.uploads.complete(ACTOR, REPO, status.id, Digest.of(b"abc", "sha512"))
    assert info.size == 3


async def test_racing_completions_publish_once(services: Services) -> None:
    uploads = services.uploads
    status = await uploads.start(ACTOR, REPO)
    await uploads.append(ACTOR, REPO, status.id, chunks(b"abc"))
    digest = Digest.of(b"abc")
    results = await asyncio.gather(
        uploads.complete(ACTOR, REPO, status.id, digest),
        uploads.complete(ACTOR, REPO, status.id, digest),
        return_exceptions=True,
    )
    assert sum(isinstance(r, BlobUploadUnknown) for r in results) == 1
    assert (await services.blobs.stat(ACTOR, REPO, digest)).size == 3


async def test_a_verified_blob_is_assembled_in_its_place(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    # The running hash proved the digest: the parts go straight to the blob's key, not to the upload's key and
    # moved from there (on the filesystem two directories fewer per blob, on Swift five requests).
    async def no_move(*_args: object) -> None:
        raise AssertionError("the blob was assembled at the upload's key and moved")

    monkeypatch.setattr(MemoryDriver, "move", no_move)
    status = await services.uploads.start(ACTOR, REPO)
    await services.uploads.append(ACTOR, REPO, status.id, chunks(b"abc"))
    info = await services.uploads.complete(ACTOR, REPO, status.id, Digest.of(b"abcdef"), chunks(b"def"))
    content = await services.blobs.open(ACTOR, REPO, info.digest)
    assert b"".join([c async for c in services.blobs.stream(content)]) == b"abcdef"


# Object stores (S3) refuse parts under a minimum size except the last: small bodies are parked.

ObjectStore = tuple[Services, MemoryDriver]


async def _session_keys(driver: MemoryDriver) -> list[str]:
    return sorted(k for k in driver.store.objects if "/_uploads/" in k)


@pytest.mark.parametrize(
    "bodies",
    [
        [b"abc", b"def", b"0123456789", b"xy"],  # small, small (parked twice), then a part, then a small last
        [b"0123456789abcdef", b"z"],  # a part, then a last part of one byte
        [b"ab", b""],  # an empty PATCH leaves the parked bytes alone
        [b"abcdefgh"],  # exactly the minimum
        [b"ab", b"0123456789"],  # small (parked), then a last body that makes a part with it
        [b"0123456789"],  # the whole blob as the last body, more than a part
    ],
)
async def test_small_bodies_are_parked_until_they_make_a_part(
    object_store_services: ObjectStore, bodies: list[bytes]
) -> None:
    services, driver = object_store_services
    uploads = services.uploads
    status = await uploads.start(ACTOR, REPO)
    for body in bodies[:-1]:
        status = await uploads.append(ACTOR, REPO, status.id, chunks(body))
    data = b"".join(bodies)
    info = await uploads.complete(ACTOR, REPO, status.id, Digest.of(data), chunks(bodies[-1]))
    assert info.size == len(data)
    content = await services.blobs.open(ACTOR, REPO, Digest.of(data))
    assert b"".join([c async for c in services.blobs.stream(content)]) == data
    assert await _session_keys(driver) == []  # no parked object or staged data left
    assert driver.store.uploads == {}


async def test_a_blob_already_stored_is_linked_without_assembling_it_again(
    object_store_services: ObjectStore,
) -> None:
    services, driver = object_store_services
    digest = Digest.of(b"shared layer")
    for repository in (RepositoryName.parse("first"), REPO):
        status = await services.uploads.start(ACTOR, repository)
        await services.uploads.complete(ACTOR, repository, status.id, digest, chunks(b"shared layer"))
    content = await services.blobs.open(ACTOR, REPO, digest)
    assert b"".join([c async for c in services.blobs.stream(content)]) == b"shared layer"
    assert driver.store.uploads == {}  # the second session's part was dropped, not left behind
    assert await _session_keys(driver) == []


async def test_a_blob_smaller_than_a_part_is_put_whole(
    object_store_services: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A config or small layer on an object store: one PUT of the object. As a one-part multipart upload,
    # opened at POST, completed and moved, it cost six requests more on S3.
    services, driver = object_store_services

    async def refused(*_args: object) -> None:
        raise AssertionError("a multipart upload was opened, completed or aborted, or an object moved")

    for method in ("start_upload", "complete_upload", "abort_upload", "move"):
        monkeypatch.setattr(MemoryDriver, method, refused)
    status = await services.uploads.start(ACTOR, REPO)
    await services.uploads.append(ACTOR, REPO, status.id, chunks(b"abc"))
    info = await services.uploads.complete(ACTOR, REPO, status.id, Digest.of(b"abcdef"), chunks(b"d", b"ef"))
    content = await services.blobs.open(ACTOR, REPO, info.digest)
    assert b"".join([c async for c in services.blobs.stream(content)]) == b"abcdef"
    empty = await services.uploads.start(ACTOR, REPO)
    assert (await services.uploads.complete(ACTOR, REPO, empty.id, Digest.of(b""))).size == 0
    cancelled = await services.uploads.start(ACTOR, REPO)
    await services.uploads.append(ACTOR, REPO, cancelled.id, chunks(b"abc"))
    await services.uploads.cancel(ACTOR, REPO, cancelled.id)
    assert driver.store.uploads == {}
    assert await _session_keys(driver) == []


async def test_the_first_part_is_recorded_before_it_is_written(
    object_store_services: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Garbage collection aborts open uploads no session names; a first part may stream for longer than its grace.
    services, driver = object_store_services
    status = await services.uploads.start(ACTOR, REPO)
    named: list[set[str]] = []
    write_part = MemoryDriver.write_part

    async def recorded_first(self: MemoryDriver, upload: UploadState, *args: Any) -> Part:
        named.append(await services.uploads._index.uploads.tokens_in_use([upload.token]))
        return await write_part(self, upload, *args)

    monkeypatch.setattr(MemoryDriver, "write_part", recorded_first)
    await services.uploads.append(ACTOR, REPO, status.id, chunks(b"0123456789"))
    assert named == [set(driver.store.uploads)]  # one upload, named by the session while its part was written
    data = b"0123456789abc"
    info = await services.uploads.complete(ACTOR, REPO, status.id, Digest.of(data), chunks(b"abc"))
    assert info.size == len(data)
    assert driver.store.uploads == {}


async def test_a_first_part_begun_by_another_request_too_is_given_up(
    object_store_services: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    services, driver = object_store_services
    status = await services.uploads.start(ACTOR, REPO)

    async def lost(_upload_id: str, _token: str) -> bool:
        return False  # another PATCH of the session recorded its upload first

    monkeypatch.setattr(services.uploads._index.uploads, "begin_upload", lost)
    with pytest.raises(RangeInvalid):
        await services.uploads.append(ACTOR, REPO, status.id, chunks(b"0123456789"))
    assert driver.store.uploads == {}  # the upload this request opened is aborted
    assert (await services.uploads.status(ACTOR, REPO, status.id)).size == 0


async def test_a_small_blob_with_the_wrong_digest_stores_nothing(object_store_services: ObjectStore) -> None:
    services, driver = object_store_services
    status = await services.uploads.start(ACTOR, REPO)
    await services.uploads.append(ACTOR, REPO, status.id, chunks(b"abc"))
    with pytest.raises(DigestInvalid):
        await services.uploads.complete(ACTOR, REPO, status.id, Digest.of(b"something else"), chunks(b"def"))
    assert [k for k in driver.store.objects if "/blobs/" in k] == []
    assert driver.store.uploads == {}
    assert await _session_keys(driver) == []
    with pytest.raises(BlobUnknown):
        await services.blobs.stat(ACTOR, REPO, Digest.of(b"abcdef"))


async def test_a_small_sha512_blob_on_an_object_store(object_store_services: ObjectStore) -> None:
    # The running hash is sha256: a sha512 digest is checked over the bytes held.
    services, _driver = object_store_services
    status = await services.uploads.start(ACTOR, REPO)
    await services.uploads.append(ACTOR, REPO, status.id, chunks(b"abc"))
    digest = Digest.of(b"abcdef", "sha512")
    info = await services.uploads.complete(ACTOR, REPO, status.id, digest, chunks(b"def"))
    assert info == BlobInfo(digest, 6)
    assert (await services.blobs.stat(ACTOR, REPO, digest)).size == 6


async def test_a_short_last_body_of_a_small_blob_keeps_the_session(object_store_services: ObjectStore) -> None:
    services, _driver = object_store_services
    status = await services.uploads.start(ACTOR, REPO)
    await services.uploads.append(ACTOR, REPO, status.id, chunks(b"abc"))
    with pytest.raises(SizeInvalid):
        await services.uploads.complete(ACTOR, REPO, status.id, Digest.of(b"abcdef"), chunks(b"de"), ContentRange(3, 5))
    assert (await services.uploads.status(ACTOR, REPO, status.id)).size == 3
    info = await services.uploads.complete(ACTOR, REPO, status.id, Digest.of(b"abcdef"), chunks(b"def"))
    assert info.size == 6


async def test_parked_bytes_survive_a_restart_and_are_rehashed(object_store_services: ObjectStore) -> None:
    services, _driver = object_store_services
    uploads = services.uploads
    status = await uploads.start(ACTOR, REPO)
    await uploads.append(ACTOR, REPO, status.id, chunks(b"abc"), ContentRange(0, 2))
    assert (await uploads.status(ACTOR, REPO, status.id)).size == 3
    await uploads.append(ACTOR, REPO, status.id, chunks(b"defghijklm"), ContentRange(3, 12))
    info = await uploads.complete(ACTOR, REPO, status.id, Digest.of(b"abcdefghijklm"))
    assert info.size == 13


async def test_an_empty_blob_through_a_session(object_store_services: ObjectStore) -> None:
    services, driver = object_store_services
    status = await services.uploads.start(ACTOR, REPO)
    info = await services.uploads.complete(ACTOR, REPO, status.id, Digest.of(b""))
    assert info.size == 0
    assert driver.store.uploads == {}


async def test_cancel_removes_parked_bytes(object_store_services: ObjectStore) -> None:
    services, driver = object_store_services
    status = await services.uploads.start(ACTOR, REPO)
    await services.uploads.append(ACTOR, REPO, status.id, chunks(b"abc"))
    assert any("parked-" in k for k in await _session_keys(driver))
    await services.uploads.cancel(ACTOR, REPO, status.id)
    assert await _session_keys(driver) == []
    assert driver.store.uploads == {}


async def test_purge_cancels_only_idle_sessions(object_store_services: ObjectStore) -> None:
    services, driver = object_store_services
    idle = await services.uploads.start(ACTOR, REPO)
    await services.uploads.append(ACTOR, REPO, idle.id, chunks(b"abc"))  # parks bytes in storage
    assert await services.uploads.purge(Actor.system(), timedelta(hours=1)) == 0
    assert await services.uploads.purge(Actor.system(), timedelta(seconds=-1)) == 1
    with pytest.raises(BlobUploadUnknown):
        await services.uploads.status(ACTOR, REPO, idle.id)
    assert await _session_keys(driver) == []
    assert driver.store.uploads == {}
    administrator = Actor.user("alice", lambda _r, _a: True, Credential.PASSWORD, None, admin=True)
    with pytest.raises(Denied):  # operator work: not even a site administrator's request may do it
        await services.uploads.purge(administrator, timedelta(0))


async def test_a_failing_cleanup_does_not_hide_the_error_that_ended_the_upload(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def outage(_prefix: str) -> None:
        raise StorageUnavailable("memory: the store is down")

    monkeypatch.setattr(services.uploads._storage, "delete_prefix", outage)
    with pytest.raises(DigestInvalid):  # the client learns its digest was wrong, not that cleanup failed
        await services.uploads.monolithic(ACTOR, REPO, Digest.of(b"other"), chunks(b"abc"))

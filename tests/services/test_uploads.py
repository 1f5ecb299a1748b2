"""Upload rules checked on the service itself (in-memory driver): Content-Range parsing and enforcement."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from trustyard.errors import BlobUnknown, BlobUploadInvalid, BlobUploadUnknown, DigestInvalid, RangeInvalid, SizeInvalid
from trustyard.oci.digest import Digest, Hasher
from trustyard.oci.names import RepositoryName
from trustyard.services import Services
from trustyard.services.actor import Actor
from trustyard.services.uploads import ContentRange, RunningHashes, parse_content_range

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
    uploads._hashers.clear()  # what a restart or another worker loses
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


def test_running_hashes_are_bounded() -> None:
    hashes = RunningHashes(limit=3)
    for n in range(5):
        hashes.keep(f"u{n}", Hasher())
    assert len(hashes) == 3
    assert hashes.take("u0") is None  # the oldest went first
    assert hashes.take("u4") is not None
    assert hashes.take("u4") is None


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

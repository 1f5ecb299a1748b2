"""A blob over 5 GiB through trustyard on Swift (static large objects) and on Swift's S3 API (multipart).

5 GiB is the largest single object S3 takes, and the object store's `OBJECT_STORE_MAX_FILE_SIZE` (5 GiB + 2
bytes by default) the largest Swift takes: a 5 GiB + 3 MiB + 12345-byte blob can only be stored as segments
(Swift SLO) or parts (S3 multipart), and its move into place as a manifest copy (Swift) or UploadPartCopy (S3).
It is pushed with a chunked upload (PATCHes of 512 MiB with Content-Range) and with one streamed PATCH
(chunked transfer encoding), then pulled through the registry (redirects off). The bytes are generated as a
stream and hashed while they are sent and while they come back: nothing is held in memory or on disk.

The registry must do it in constant memory. Two bounds are asserted, 192 MiB each: the sum,
over the main process and its two workers, of each one's peak resident memory (VmHWM) minus its VmHWM before
the push; and the highest sampled sum of their resident memory (VmRSS, every 0.2 s) minus the sum before it.
(Absolute numbers are printed: about 140-165 MiB per process at rest, of which the bulk is imported code.)
What a worker needs for one such stream: S3 keeps at most about three parts of 10 MiB (one uploading, one
being read in, one in the read-ahead of the service's 5 MiB minimum part) and UploadPartCopy needs no bytes at
all; Swift keeps one 20 MiB segment; reads go through in 1 MiB chunks. Twice that, for two workers serving
the PATCHes and the GET, plus allocator slack and TLS buffers, stays well under 192 MiB; a driver or service
that buffered a part list, a whole part of 512 MiB or the blob itself would blow through it.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from . import Registry
from .stores import MemorySampler, Store, running

pytestmark = [
    pytest.mark.clients,
    pytest.mark.slow,
    pytest.mark.trustyard_only(reason="measures trustyard's own processes"),
]

MiB = 1024 * 1024
GiB = 1024 * MiB
SIZE = 5 * GiB + 3 * MiB + 12345  # over S3's single-object limit and the store's max_file_size
PIECE = 4 * MiB  # the generator's unit
CHUNK = 512 * MiB  # one PATCH of the chunked upload (a multiple of PIECE)
GROWTH_BOUND_MIB = 192.0


class Pattern:
    """SIZE deterministic, incompressible bytes in PIECE-sized pieces: one random block, each piece stamped
    with its index, so every piece differs. Pieces are made as they are asked for and hashed as they go."""

    def __init__(self, seed: int) -> None:
        self.block = memoryview(random.Random(seed).randbytes(PIECE))
        self.sent = hashlib.sha256()
        self.offset = 0

    def take(self, length: int) -> Iterator[bytes]:
        """The next `length` bytes of the stream (`length` a multiple of PIECE, or the end)."""
        end = min(self.offset + length, SIZE)
        while self.offset < end:
            index = self.offset // PIECE
            piece = (index.to_bytes(8, "big") + self.block[8:])[: end - self.offset]
            self.sent.update(piece)
            self.offset += len(piece)
            yield piece


def push(http: httpx.Client, repo: str, pattern: Pattern, chunked: bool) -> str:
    """Upload the whole pattern in one session; returns the digest it was committed under."""
    start = http.post(f"/v2/{repo}/blobs/uploads/")
    assert start.status_code == 202, f"{start.status_code} {start.text}"
    location = start.headers["Location"]
    if chunked:
        while pattern.offset < SIZE:
            offset, length = pattern.offset, min(CHUNK, SIZE - pattern.offset)
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + length - 1}",
                "Content-Length": str(length),
            }
            response = http.patch(location, content=pattern.take(length), headers=headers)
            assert response.status_code == 202, f"PATCH {offset}: {response.status_code} {response.text}"
            assert response.headers["Range"] == f"0-{offset + length - 1}"
            location = response.headers["Location"]
    else:  # one PATCH, no length: chunked transfer encoding
        response = http.patch(
            location, content=pattern.take(SIZE), headers={"Content-Type": "application/octet-stream"}
        )
        assert response.status_code == 202, f"PATCH: {response.status_code} {response.text}"
        assert response.headers["Range"] == f"0-{SIZE - 1}"
        location = response.headers["Location"]
    assert pattern.offset == SIZE
    digest = "sha256:" + pattern.sent.hexdigest()
    done = http.put(location, params={"digest": digest})
    assert done.status_code == 201, f"PUT {digest}: {done.status_code} {done.text}"
    assert done.headers["Docker-Content-Digest"] == digest
    return digest


def pull(http: httpx.Client, repo: str, digest: str) -> tuple[int, str]:
    """Stream the blob through the registry, hashing as it comes; (size, digest)."""
    received, size = hashlib.sha256(), 0
    with http.stream("GET", f"/v2/{repo}/blobs/{digest}") as response:
        assert response.status_code == 200, f"GET {digest}: {response.status_code} {response.read()!r}"
        assert int(response.headers["Content-Length"]) == SIZE
        for chunk in response.iter_raw(MiB):
            received.update(chunk)
            size += len(chunk)
    return size, "sha256:" + received.hexdigest()


def bearer_client(registry: Registry, repo: str) -> httpx.Client:
    """A client with one bearer token for `repo` (the tests' token auth reads whole response bodies)."""
    assert registry.secret is not None
    token = httpx.get(
        f"{registry.url}/auth/token",
        params={"service": "trustyard", "scope": f"repository:{repo}:pull,push"},
        auth=("admin", registry.secret),
        verify=registry.ssl_context(),
    )
    assert token.status_code == 200, token.text
    headers = {"Authorization": f"Bearer {token.json()['token']}"}
    return httpx.Client(base_url=registry.url, verify=registry.ssl_context(), headers=headers, timeout=900.0)


@pytest.fixture
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    made = Store.create(request.param)
    try:
        yield made
    finally:
        made.remove()


# One upload mode per backend keeps CI near four minutes: Swift (SLO) takes chunked PATCHes, S3 (multipart, and
# a 5 GiB server-side copy into place) one streamed PATCH, as docker sends it. Both modes run through both
# drivers in tests/storage and tests/services with small blobs.
@pytest.mark.parametrize(
    ("store", "chunked"),
    [("swift", True), ("s3", False)],
    ids=["swift-chunked-patches", "s3-one-streamed-patch"],
    indirect=["store"],
)
def test_blob_over_5_gib_in_constant_memory(store: Store, chunked: bool, tmp_path: Path) -> None:
    repo = "cloud/large"
    # Blob GETs stream through the registry (no redirect to the store), and a token lasts the whole test.
    storage = store.storage(redirect=False)
    with running("trustyard", tmp_path / "data", storage, env={"TRUSTYARD_TOKEN_TTL": "3600"}) as registry:
        with bearer_client(registry, repo) as http:
            sampler = MemorySampler(registry.server.proc.pid)
            baseline, resident = sampler.hwm(), sampler.rss()
            began = time.monotonic()
            with sampler:
                pattern = Pattern(seed=5)
                digest = push(http, repo, pattern, chunked)
                pushed = time.monotonic()
                head = http.head(f"/v2/{repo}/blobs/{digest}")
                assert head.status_code == 200
                assert int(head.headers["Content-Length"]) == SIZE
                size, pulled = pull(http, repo, digest)
            done = time.monotonic()
            assert (size, pulled) == (SIZE, digest), "the blob came back different"
            peaks = sampler.hwm()

        report(registry, store, chunked, baseline, peaks, (resident, sampler.peak), pushed - began, done - pushed)
        assert store.blob_keys()  # in the bucket, under Distribution's layout
        # Each process's high-water mark over the run, and the highest sampled sum, against where they started.
        growth = sum(peaks[pid] - baseline.get(pid, 0.0) for pid in peaks)
        assert growth < GROWTH_BOUND_MIB, f"the registry's peak memory grew by {growth:.0f} MiB: {peaks}"
        assert sampler.peak - resident < GROWTH_BOUND_MIB, (
            f"resident memory rose from {resident:.0f} MiB to {sampler.peak:.0f} MiB"
        )


def report(
    registry: Registry,
    store: Store,
    chunked: bool,
    baseline: dict[int, float],
    peaks: dict[int, float],
    sampled: tuple[float, float],
    push_s: float,
    pull_s: float,
) -> None:
    mode = "chunked PATCHes" if chunked else "one streamed PATCH"
    mib = SIZE / MiB
    print(
        f"\n{store.kind} ({mode}): push {push_s:.0f} s ({mib / push_s:.0f} MiB/s), pull {pull_s:.0f} s "
        f"({mib / pull_s:.0f} MiB/s); VmHWM per process (MiB) at start {sorted(baseline.values())}, "
        f"after {sorted(round(v) for v in peaks.values())}: sum {sum(peaks.values()):.0f} MiB; "
        f"sampled VmRSS sum {sampled[0]:.0f} MiB at start, {sampled[1]:.0f} MiB at peak ({registry.server.log.name})"
    )

"""Upload session rows on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.db.records import A, B
from trustyard.db.index import Index
from trustyard.db.uploads import UploadRow


async def test_upload_rows_advance_optimistically(index: Index) -> None:
    now = datetime.now(UTC)
    await index.uploads.create_upload(UploadRow("u1", "r", "key", "token", [], 0, now))
    row = await index.uploads.upload("r", "u1")
    assert row is not None
    assert row.size == 0
    assert row.parts == []
    assert await index.uploads.upload("other", "u1") is None
    part = {"number": 1, "offset": 0, "size": 5, "etag": "x"}
    assert await index.uploads.advance_upload("u1", 0, [part], 5) is True
    assert await index.uploads.advance_upload("u1", 0, [part], 5) is False  # someone else already advanced it
    row = await index.uploads.upload("r", "u1")
    assert row is not None
    assert row.size == 5
    assert row.parts == [part]
    assert [r.id for r in await index.uploads.stale_uploads(datetime.now(UTC) + timedelta(seconds=1))] == ["u1"]
    await index.uploads.delete_upload("u1")
    assert await index.uploads.upload("r", "u1") is None


async def test_claim_and_reserve_is_one_claim(index: Index) -> None:
    """The final PUT's claim reserves the blob in the same transaction; a second claim finds no session and
    reserves nothing."""
    now = datetime.now(UTC)
    await index.uploads.create_upload(UploadRow("u1", "r", "key", "token", [], 0, now))
    assert await index.uploads.claim_and_reserve("u1", A, 5) == (True, True)
    assert await index.uploads.upload("r", "u1") is None
    assert await index.blobs.known_blobs([A]) == {A}
    assert await index.uploads.claim_and_reserve("u1", B, 5) == (False, False)
    assert await index.blobs.known_blobs([B]) == set()


async def test_claim_and_reserve_of_a_blob_being_collected(index: Index) -> None:
    """A tombstoned blob is not reserved, but the claim holds: the push then waits for the collector."""
    now = datetime.now(UTC)
    await index.uploads.create_upload(UploadRow("u1", "r", "key", "token", [], 0, now))
    assert await index.blobs.claim_orphan(A, 5) is True  # tombstoned
    assert await index.uploads.claim_and_reserve("u1", A, 5) == (True, False)
    assert await index.uploads.upload("r", "u1") is None

"""Upload session rows on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.db.records import A, B
from trustyard.db.index import Index
from trustyard.db.uploads import ParkedPiece, PartPiece, UploadRow, decode_pieces, encode_pieces


async def test_upload_rows_advance_optimistically(index: Index) -> None:
    now = datetime.now(UTC)
    await index.uploads.create_upload(UploadRow("u1", "r", "key", "token", (), 0, now))
    row = await index.uploads.upload("r", "u1")
    assert row is not None
    assert row.size == 0
    assert row.pieces == ()
    assert await index.uploads.upload("other", "u1") is None
    pieces = (PartPiece(1, 0, 5, "x", b"state"), ParkedPiece("key/parked-1", 5, 2))
    assert await index.uploads.advance_upload("u1", 0, pieces, 7) is True
    assert await index.uploads.advance_upload("u1", 0, pieces, 7) is False  # someone else already advanced it
    row = await index.uploads.upload("r", "u1")
    assert row is not None
    assert row.size == 7
    assert row.pieces == pieces
    assert row.parts == [pieces[0]]
    assert row.parked == pieces[1]
    assert [r.id for r in await index.uploads.stale_uploads(datetime.now(UTC) + timedelta(seconds=1))] == ["u1"]
    await index.uploads.delete_upload("u1")
    assert await index.uploads.upload("r", "u1") is None


async def test_claim_and_reserve_is_one_claim(index: Index) -> None:
    """The final PUT's claim reserves the blob in the same transaction; a second claim finds no session and
    reserves nothing."""
    now = datetime.now(UTC)
    await index.uploads.create_upload(UploadRow("u1", "r", "key", "token", (), 0, now))
    assert await index.uploads.claim_and_reserve("u1", A, 5) == (True, True)
    assert await index.uploads.upload("r", "u1") is None
    assert await index.blobs.known_blobs([A]) == {A}
    assert await index.uploads.claim_and_reserve("u1", B, 5) == (False, False)
    assert await index.blobs.known_blobs([B]) == set()


async def test_claim_and_reserve_of_a_blob_being_collected(index: Index) -> None:
    """A tombstoned blob is not reserved, but the claim holds: the push then waits for the collector."""
    now = datetime.now(UTC)
    await index.uploads.create_upload(UploadRow("u1", "r", "key", "token", (), 0, now))
    assert await index.blobs.claim_orphan(A, 5) is True  # tombstoned
    assert await index.uploads.claim_and_reserve("u1", A, 5) == (True, False)
    assert await index.uploads.upload("r", "u1") is None


def test_pieces_keep_the_json_sessions_were_always_stored_with() -> None:
    """A session begun before an upgrade continues after it: the ``parts`` column's keys never change."""
    stored = (
        '[{"number": 1, "offset": 0, "size": 8, "etag": "e1", "sha256_state": "c3RhdGU="},'
        ' {"parked": "k/parked-2", "offset": 8, "size": 3}]'
    )
    pieces = decode_pieces(stored)
    assert pieces == (PartPiece(1, 0, 8, "e1", b"state"), ParkedPiece("k/parked-2", 8, 3))
    assert decode_pieces(encode_pieces(pieces)) == pieces
    assert encode_pieces(pieces) == stored


async def test_an_upload_begins_once(index: Index) -> None:
    """Of two requests opening a session's storage upload with its first part, only the first is recorded."""
    await index.uploads.create_upload(UploadRow("u1", "r", "key", "", (), 0, datetime.now(UTC)))
    assert await index.uploads.begin_upload("u1", "t1") is True
    assert await index.uploads.begin_upload("u1", "t2") is False
    row = await index.uploads.upload("r", "u1")
    assert row is not None
    assert row.token == "t1"
    assert await index.uploads.tokens_in_use(["t1", "t2"]) == {"t1"}

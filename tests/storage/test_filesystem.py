"""FilesystemDriver.sweep_staging: what writes cut off by a crash left in ``.trustyard-tmp`` goes; what an
upload session recorded stays."""

from __future__ import annotations

from pathlib import Path

from trustyard.storage.filesystem import TEMP_DIR, FilesystemDriver


async def _chunks(data: bytes):  # type: ignore[no-untyped-def]
    yield data


async def test_sweep_keeps_recorded_parts_and_removes_the_rest(tmp_path: Path) -> None:
    driver = FilesystemDriver(tmp_path)
    live = await driver.start_upload("repositories/a/_uploads/1/data")
    kept = await driver.write_part(live, 1, 0, _chunks(b"recorded"))
    await driver.put("docker/registry/v2/blobs/sha256/ab/abc/data", b"published")
    temp = tmp_path / TEMP_DIR
    cut_off = [
        temp / ("0" * 32),  # an atomic write
        temp / "uploads" / live.token / f"2.{'d' * 32}",  # a part no session recorded
        temp / "uploads" / ("f" * 32) / f"1.{'e' * 32}",  # a session that is gone
    ]
    for path in cut_off:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")

    assert await driver.sweep_staging({live.token: {kept.etag}}) == 3

    assert not [path for path in cut_off if path.exists()]
    await driver.complete_upload(live, [kept])  # the session goes on as if nothing happened
    assert await driver.get("repositories/a/_uploads/1/data") == b"recorded"
    assert await driver.get("docker/registry/v2/blobs/sha256/ab/abc/data") == b"published"
    assert await driver.sweep_staging({}) == 0

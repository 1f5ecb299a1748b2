#!/usr/bin/env python3
"""Garbage collection at scale: BLOBS blobs in MANIFESTS manifests, half the manifests deleted, one collection.

Seeds a data directory directly (blob files in Distribution's layout through the storage driver, rows in bulk
through SQL: the benchmark measures collection, not pushing), deletes every other manifest through the index
as a manifest DELETE does, then runs one collection with the registry's own GarbageCollector and reports its
time, storage requests per blob examined and per blob deleted, and memory (the process's peak RSS before and
after the run, and Python's peak allocation during it with --tracemalloc). Not a test: nothing is asserted
but that the result is exact (storage then holds exactly the referenced blobs).

    .venv/bin/python bench/gc_bench.py [--blobs 100000] [--manifests 10000] [--dir DIR] [--database URL]
                                       [--storage filesystem|s3|swift] [--tracemalloc]

Object stores take the same environment as the tests (`source /work/store.env`): SWIFT_* for swift,
S3_ENDPOINT_URL / AWS_* for s3 (a bucket `gc-bench-<random>` is created and left for inspection).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
import os
import resource
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' wiring of Services
from tests.services.wiring import wire

from trustyard.db import tables as t
from trustyard.db.engine import migrate, open_index, sqlite_url
from trustyard.db.index import Index
from trustyard.oci.digest import Digest
from trustyard.services.actor import Actor
from trustyard.services.gc import GcOptions
from trustyard.storage import layout
from trustyard.storage.config import parse_storage_block
from trustyard.storage.driver import SERVING
from trustyard.storage.factory import build_driver

REPOSITORIES = 100
CHUNK = 2000


class Counting:
    """The driver, counting the requests made through it (by method)."""

    def __init__(self, driver: Any) -> None:
        self._driver = driver
        self.calls: collections.Counter[str] = collections.Counter()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._driver, name)
        if not callable(target):
            return target
        if name == "list":

            def listing(*args: Any, **kwargs: Any) -> Any:
                self.calls["list"] += 1
                return target(*args, **kwargs)

            return listing

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return await target(*args, **kwargs)

        return call


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def seed(index: Index, storage: Any, blobs: int, manifests: int) -> None:
    """``manifests`` manifests over ``REPOSITORIES`` repositories, each referencing blobs/manifests of its own."""
    per = blobs // manifests
    old = datetime.now(UTC) - timedelta(days=1)
    repository_ids = {}
    async with index.writer.begin() as conn:
        for r in range(REPOSITORIES):
            await conn.execute(insert(t.repositories).values(name=f"bench/r{r}", created_at=old))
        for row in await conn.execute(select(t.repositories.c.id, t.repositories.c.name)):
            repository_ids[row.name] = row.id
    rows: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    semaphore = asyncio.Semaphore(64)

    async def put(key: str, data: bytes) -> None:
        async with semaphore:
            await storage.put(key, data)

    for m in range(manifests):
        repo = f"bench/r{m % REPOSITORIES}"
        repository_id = repository_ids[repo]
        digests = []
        writes = []
        for b in range(per):
            data = f"blob {m} {b}".encode()
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            digests.append(digest)
            writes.append(put(layout.blob_data(Digest.parse(digest)), data))
            rows["blobs"].append({"digest": digest, "size": len(data), "created_at": old, "touched_at": old})
            rows["links"].append({"repository_id": repository_id, "digest": digest, "created_at": old})
        payload = json.dumps({"schemaVersion": 2, "n": m, "layers": digests}).encode()
        digest = "sha256:" + hashlib.sha256(payload).hexdigest()
        writes.append(put(layout.blob_data(Digest.parse(digest)), payload))
        rows["blobs"].append({"digest": digest, "size": len(payload), "created_at": old, "touched_at": old})
        rows["manifests"].append(
            {
                "repository_id": repository_id,
                "digest": digest,
                "media_type": "application/vnd.oci.image.manifest.v1+json",
                "payload": payload,
                "size": len(payload),
                "created_at": old,
                "_blobs": digests,
                "_tag": f"t{m}",
            }
        )
        await asyncio.gather(*writes)
        if len(rows["manifests"]) >= CHUNK // per or m == manifests - 1:
            await _flush(index, rows, old)
            rows.clear()


async def _flush(index: Index, rows: dict[str, list[dict[str, Any]]], at: datetime) -> None:
    async with index.writer.begin() as conn:
        await conn.execute(insert(t.blobs), rows["blobs"])
        await conn.execute(insert(t.repository_blobs), rows["links"])
        for manifest in rows["manifests"]:
            blob_digests, tag = manifest.pop("_blobs"), manifest.pop("_tag")
            manifest_id = (
                await conn.execute(insert(t.manifests).values(**manifest).returning(t.manifests.c.id))
            ).scalar_one()
            await conn.execute(
                insert(t.manifest_blobs),
                [
                    {"manifest_id": manifest_id, "repository_id": manifest["repository_id"], "digest": d}
                    for d in blob_digests
                ],
            )
            await conn.execute(
                insert(t.tags).values(
                    repository_id=manifest["repository_id"], name=tag, manifest_id=manifest_id, updated_at=at
                )
            )


async def stored_blobs(storage: Any) -> set[str]:
    found = set()
    async for key in storage.list(layout.BLOBS):
        if (digest := layout.blob_of(key)) is not None:
            found.add(str(digest))
    return found


def storage_block(kind: str, root: Path) -> dict[str, Any]:
    if kind == "filesystem":
        return {"filesystem": {"rootdirectory": str(root / "storage", SERVING)}}
    name = f"gc-bench-{uuid.uuid4().hex[:8]}"
    if kind == "swift":
        return {
            "swift": {
                "authurl": os.environ["SWIFT_AUTH_URL"],
                "username": os.environ["SWIFT_USERNAME"],
                "password": os.environ["SWIFT_PASSWORD"],
                "container": name,
                "prefix": "registry",
            }
        }
    import boto3

    endpoint = os.environ["S3_ENDPOINT_URL"]
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    return {
        "s3": {
            "bucket": name,
            "region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            "regionendpoint": endpoint,
            "accesskey": os.environ["AWS_ACCESS_KEY_ID"],
            "secretkey": os.environ["AWS_SECRET_ACCESS_KEY"],
            "forcepathstyle": True,
            "rootdirectory": "registry",
        }
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blobs", type=int, default=100_000)
    parser.add_argument("--manifests", type=int, default=10_000)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--database", default=None, help="SQLAlchemy URL (default SQLite in --dir)")
    parser.add_argument("--storage", choices=["filesystem", "s3", "swift"], default="filesystem")
    parser.add_argument("--tracemalloc", action="store_true", help="also Python's peak allocation (slower)")
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="gc-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    url = args.database or sqlite_url(root / "index.db")
    await migrate(url)
    index = open_index(url)
    driver = build_driver(parse_storage_block(storage_block(args.storage, root)), root / "storage")
    counting = Counting(driver)
    services = wire(index, counting)  # type: ignore[arg-type]
    started = time.perf_counter()
    await seed(index, driver, args.blobs, args.manifests)
    seeded = time.perf_counter() - started
    total_blobs = len(await stored_blobs(driver))
    print(f"seeded {args.manifests} manifests, {total_blobs} blobs (manifests included) in {seeded:.1f}s at {root}")
    for m in range(0, args.manifests, 2):  # delete every other manifest, as DELETE /v2/.../manifests/<digest>
        row = await index.manifests.tags_by_age(f"bench/r{m % REPOSITORIES}")
        del row
    async with index.reader.connect() as conn:
        doomed = (
            await conn.execute(
                select(t.manifests.c.digest, t.repositories.c.name)
                .join(t.repositories)
                .where(t.manifests.c.id % 2 == 1)
            )
        ).all()
    for digest, name in doomed:  # every other manifest, as DELETE /v2/<name>/manifests/<digest> does
        await index.manifests.delete_manifest(name, digest)
    print(f"deleted {len(doomed)} manifests through the index")
    rss_before = rss_mib()
    if args.tracemalloc:
        tracemalloc.start()
    counting.calls.clear()
    started = time.perf_counter()
    run = await services.gc.run(Actor.system(), GcOptions(grace=timedelta(hours=1)))
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20 if args.tracemalloc else None
    report = run.report
    requests = sum(counting.calls.values())
    remaining = await stored_blobs(driver)
    async with index.reader.connect() as conn:
        rows = {r[0] for r in await conn.execute(select(t.blobs.c.digest))}
    print(
        f"collection: {elapsed:.1f}s, removed {report['blobs']} blobs ({report['bytes_freed']} bytes), "
        f"{report['links']} links"
    )
    print(
        f"storage requests: {requests} ({dict(counting.calls)}); per blob examined {requests / total_blobs:.2f}, "
        f"per blob deleted {requests / max(report['blobs'], 1):.2f}"
    )
    print(
        f"peak RSS: {rss_before:.0f} MiB before the run, {rss_mib():.0f} MiB after"
        + (f"; Python peak during the run {peak:.1f} MiB" if peak is not None else "")
    )
    print(f"exact: storage holds {len(remaining)} blobs, the index {len(rows)}: {'yes' if remaining == rows else 'NO'}")
    await driver.close()
    await index.dispose()


if __name__ == "__main__":
    asyncio.run(main())

#!/usr/bin/env python3
"""Online migration throughput against the backends' own server-side copy, for the same objects.

Seeds a source bucket (or container) with OBJECTS blobs of MIB MiB in all, pushed through the registry's
services (so the SQL index knows them, as a live registry's would), then measures:

1. ``migration``: services/migration.py copying every blob and link from the source to a fresh target on the
   same store (streamed through this process, each blob's digest computed on the way), the copy alone timed;
2. ``server-side copy``: the same objects copied by the store itself, as fast as it can, with as many requests
   in flight as the migration uses (``PARALLEL``): S3 ``CopyObject`` (boto3) between two buckets, or Swift's
   ``PUT`` with ``X-Copy-From`` between two containers.

    source /work/store.env
    .venv/bin/python bench/migration_bench.py [--store s3|swift|both] [--mib 256] [--objects 64]

Prints MB/s and objects/s for both and their ratio; buckets and containers are removed afterwards. Not a test:
it asserts only that the migration finished with nothing missing.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures as cf
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' wiring of Services
from tests.services.wiring import wire

from trustyard.db.engine import migrate, open_index, sqlite_url
from trustyard.oci.digest import Digest
from trustyard.oci.names import RepositoryName
from trustyard.services import Services
from trustyard.services.actor import Actor
from trustyard.services.migration_copy import PARALLEL
from trustyard.services.settings import StartupStorage
from trustyard.storage.config import parse_storage_block
from trustyard.storage.driver import SERVING
from trustyard.storage.factory import build_driver
from trustyard.storage.switchable import SwitchableDriver

MiB = 1 << 20
SYSTEM = Actor.system()
REPOSITORY = RepositoryName("bench/migration")


def s3_client() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=os.environ["S3_ENDPOINT_URL"],
        config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard"}, max_pool_connections=32),
    )


def swift_session() -> tuple[str, dict[str, str]]:
    response = httpx.get(
        os.environ["SWIFT_AUTH_URL"],
        headers={"X-Auth-User": os.environ["SWIFT_USERNAME"], "X-Auth-Key": os.environ["SWIFT_PASSWORD"]},
    )
    response.raise_for_status()
    return response.headers["X-Storage-Url"], {"X-Auth-Token": response.headers["X-Auth-Token"]}


def block(store: str, name: str) -> dict[str, Any]:
    if store == "swift":
        return {
            "swift": {
                "authurl": os.environ["SWIFT_AUTH_URL"],
                "username": os.environ["SWIFT_USERNAME"],
                "password": os.environ["SWIFT_PASSWORD"],
                "container": name,
            }
        }
    return {
        "s3": {
            "region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            "regionendpoint": os.environ["S3_ENDPOINT_URL"],
            "accesskey": os.environ["AWS_ACCESS_KEY_ID"],
            "secretkey": os.environ["AWS_SECRET_ACCESS_KEY"],
            "bucket": name,
            "redirect": False,
        }
    }


def names(store: str, name: str) -> list[str]:
    if store == "swift":
        url, headers = swift_session()
        found, marker = [], ""
        while True:
            page = httpx.get(f"{url}/{name}", params={"format": "json", "marker": marker}, headers=headers).json()
            if not page:
                return found
            found += [entry["name"] for entry in page]
            marker = page[-1]["name"]
    client = s3_client()
    found = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        found += [entry["Key"] for entry in page.get("Contents", [])]
    return found


def create(store: str, name: str) -> None:
    if store == "swift":
        url, headers = swift_session()
        httpx.put(f"{url}/{name}", headers=headers).raise_for_status()
    else:
        s3_client().create_bucket(Bucket=name)


def remove(store: str, name: str) -> None:
    if store == "swift":
        url, headers = swift_session()
        for key in names(store, name):
            httpx.delete(f"{url}/{name}/{quote(key)}", headers=headers)
        httpx.delete(f"{url}/{name}", headers=headers)
        return
    client = s3_client()
    for key in names(store, name):
        client.delete_object(Bucket=name, Key=key)
    client.delete_bucket(Bucket=name)


def server_side_copy(store: str, source: str, target: str, keys: list[str]) -> float:
    """Copy ``keys`` from ``source`` to ``target`` inside the store, ``PARALLEL`` at a time; seconds taken."""
    if store == "swift":
        url, headers = swift_session()
        # Segments first would be needed for a manifest copy; copying the SLO manifest copies the whole object.
        objects = [k for k in keys if not k.startswith("segments/")]

        def one(key: str) -> None:
            copy_headers = {**headers, "X-Copy-From": f"/{source}/{quote(key)}"}
            response = httpx.put(f"{url}/{target}/{quote(key)}", headers=copy_headers, timeout=600)
            response.raise_for_status()
    else:
        client = s3_client()
        objects = keys

        def one(key: str) -> None:
            client.copy_object(Bucket=target, Key=key, CopySource={"Bucket": source, "Key": key})

    started = time.perf_counter()
    with cf.ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(one, objects))
    return time.perf_counter() - started


async def seed(services: Services, objects: int, total: int) -> int:
    """``objects`` blobs of ``total`` bytes in all, pushed through the upload service; bytes pushed."""
    size = total // objects
    pushed = 0
    for n in range(objects):
        data = random.Random(n).randbytes(size)

        async def body(data: bytes = data) -> AsyncIterator[bytes]:
            for start in range(0, len(data), MiB):
                yield data[start : start + MiB]

        await services.uploads.monolithic(SYSTEM, REPOSITORY, Digest.of(data), body())
        pushed += len(data)
    return pushed


async def bench(store: str, mib: int, objects: int) -> None:
    source, target, copy_target = (f"mig-bench-{uuid.uuid4().hex[:10]}" for _ in range(3))
    for name in (source, target, copy_target):
        create(store, name)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = sqlite_url(Path(tmp) / "index.db")
            await migrate(url)
            index = open_index(url)
            settings = parse_storage_block(block(store, source))
            startup = StartupStorage(settings, None, Path(tmp) / "default")
            driver = SwitchableDriver(build_driver(settings, Path(tmp) / "default", SERVING))
            services = wire(index, driver, startup=startup)
            try:
                size = await seed(services, objects, mib * MiB)
                started = await services.migrations.start(SYSTEM, parse_storage_block(block(store, target)))
                at = time.perf_counter()
                done = await services.migrations.run(SYSTEM, started.id)
                migration = time.perf_counter() - at
                assert done.state == "done", done
                assert done.failed == 0, done.report
            finally:
                await services.switch.close()
                await index.dispose()
        keys = [k for k in names(store, source) if "/blobs/" in k]
        copy = server_side_copy(store, source, copy_target, keys)
        count = len([k for k in keys if not k.startswith("segments/")])
        for what, seconds in (("migration", migration), ("server-side copy", copy)):
            print(
                f"{store:5} {what:17} {count:4} objects {size / MiB:7.1f} MiB {seconds:7.2f} s "
                f"{size / MiB / seconds:8.1f} MiB/s {count / seconds:7.1f} objects/s"
            )
        print(f"{store:5} migration / server-side copy throughput: {copy / migration:.2f}x")
    finally:
        for name in (source, target, copy_target):
            remove(store, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=["s3", "swift", "both"], default="both")
    parser.add_argument("--mib", type=int, default=256, help="total size of the blobs")
    parser.add_argument("--objects", type=int, default=64, help="number of blobs")
    args = parser.parse_args()
    for store in ["s3", "swift"] if args.store == "both" else [args.store]:
        asyncio.run(bench(store, args.mib, args.objects))


if __name__ == "__main__":
    main()

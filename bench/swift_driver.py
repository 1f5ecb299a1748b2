#!/usr/bin/env python3
"""256 MiB PUT and GET through trustyard's SwiftDriver vs. a plain HTTP client (httpx) on the same Swift.

    eval "$(bash scripts/object-store.sh start)"; .venv/bin/python bench/swift_driver.py [MiB] [runs]

The plain client sends one streamed PUT (the whole object, Content-Length known) and streams one GET; the
driver cuts the stream into SLO segments of ``chunksize`` (default 20 MiB), then PUTs the manifest.
Prints MiB/s per run and the median; results go to docs/storage.md by hand.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator

import httpx

from trustyard.storage.config import SwiftStorage
from trustyard.storage.swift import SwiftDriver

MiB = 1024 * 1024
SIZE = int(sys.argv[1]) * MiB if len(sys.argv) > 1 else 256 * MiB
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
AUTH = os.environ.get("SWIFT_AUTH_URL", "http://127.0.0.1:8080/auth/v1.0")
USER = os.environ.get("SWIFT_USERNAME", "test:tester")
KEY = os.environ.get("SWIFT_PASSWORD", "testing")
BLOCK = os.urandom(MiB)


async def body() -> AsyncIterator[bytes]:
    for _ in range(SIZE // MiB):
        yield BLOCK


async def plain(container: str) -> tuple[float, float]:
    async with httpx.AsyncClient(timeout=300) as client:
        auth = await client.get(AUTH, headers={"X-Auth-User": USER, "X-Auth-Key": KEY})
        url, token = auth.headers["X-Storage-Url"], auth.headers["X-Auth-Token"]
        headers = {"X-Auth-Token": token}
        await client.put(f"{url}/{container}", headers=headers)
        start = time.perf_counter()
        put = await client.put(
            f"{url}/{container}/plain", headers={**headers, "Content-Length": str(SIZE)}, content=body()
        )
        put.raise_for_status()
        put_s = time.perf_counter() - start
        start = time.perf_counter()
        total = 0
        async with client.stream("GET", f"{url}/{container}/plain", headers=headers) as response:
            async for chunk in response.aiter_raw():
                total += len(chunk)
        get_s = time.perf_counter() - start
        assert total == SIZE
        await client.delete(f"{url}/{container}/plain", headers=headers)
        await client.delete(f"{url}/{container}", headers=headers)
    return SIZE / MiB / put_s, SIZE / MiB / get_s


async def driver(container: str) -> tuple[float, float]:
    swift = SwiftDriver(SwiftStorage(authurl=AUTH, username=USER, password=KEY, container=container))
    try:
        await swift.stat("warm-up")
        start = time.perf_counter()
        assert await swift.write("blob", body()) == SIZE
        put_s = time.perf_counter() - start
        start = time.perf_counter()
        total = 0
        async for chunk in swift.read("blob"):
            total += len(chunk)
        get_s = time.perf_counter() - start
        assert total == SIZE
        # The same SLO read by the plain client: how much of the GET difference is Swift assembling segments.
        async with httpx.AsyncClient(timeout=300) as client:
            auth = await client.get(AUTH, headers={"X-Auth-User": USER, "X-Auth-Key": KEY})
            url, headers = auth.headers["X-Storage-Url"], {"X-Auth-Token": auth.headers["X-Auth-Token"]}
            start = time.perf_counter()
            async with client.stream("GET", f"{url}/{container}/files/blob", headers=headers) as response:
                async for chunk in response.aiter_raw():
                    total -= len(chunk)
            print(f"  (plain httpx GET of the driver's SLO: {SIZE / MiB / (time.perf_counter() - start):.0f} MiB/s)")
            await swift.delete("blob")
            await client.delete(f"{url}/{container}", headers=headers)
    finally:
        await swift.close()
    return SIZE / MiB / put_s, SIZE / MiB / get_s


async def main() -> None:
    results: dict[str, list[tuple[float, float]]] = {"plain httpx": [], "SwiftDriver": []}
    for _ in range(RUNS):
        for name, run in (("plain httpx", plain), ("SwiftDriver", driver)):
            results[name].append(await run(f"bench-{uuid.uuid4().hex[:8]}"))
            print(f"{name:12s} PUT {results[name][-1][0]:6.0f} MiB/s  GET {results[name][-1][1]:6.0f} MiB/s")
    for name, runs in results.items():
        put = statistics.median(r[0] for r in runs)
        get = statistics.median(r[1] for r in runs)
        print(f"median {name:12s} PUT {put:6.0f} MiB/s  GET {get:6.0f} MiB/s  ({SIZE // MiB} MiB, {RUNS} runs)")


if __name__ == "__main__":
    asyncio.run(main())

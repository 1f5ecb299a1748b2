"""Which S3 library the s3 driver uses: obstore or aiobotocore, measured against a real S3 server.

Run against the object store (``eval "$(bash scripts/object-store.sh start)"``)::

    .venv/bin/python bench/s3_client_choice.py [--size-mib 256] [--small 300] [--endpoint URL]

For each library it measures, on one fresh bucket: a streaming PUT of ``--size-mib`` (multipart, 10 MiB
parts, one part in flight: what the driver does with a blob stream of unknown length), a streaming GET of it,
and ``--small`` 2 KiB PUT+GET+HEAD round trips with 16 in flight (links, manifests). boto3 ``put_object``
/ ``get_object`` run first as the "store alone" baseline; trustyard's S3Driver runs last (write + read of the
same size). Results go to stdout (MiB/s, req/s). Needs ``pip install obstore`` besides the test extra.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import boto3
import obstore
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.config import Config
from obstore.store import S3Store

MiB = 1024 * 1024
PART = 10 * MiB
BLOCK = MiB


def block_stream(size: int) -> AsyncIterator[bytes]:
    block = os.urandom(BLOCK)

    async def gen() -> AsyncIterator[bytes]:
        for _ in range(size // BLOCK):
            yield block

    return gen()


async def timed(label: str, call: Callable[[], Awaitable[float]], rows: list[tuple[str, str]]) -> None:
    start = time.perf_counter()
    amount = await call()
    seconds = time.perf_counter() - start
    rows.append((label, f"{amount / seconds:8.1f}"))
    print(f"{label:55s} {amount / seconds:8.1f}", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", default=os.environ.get("S3_ENDPOINT_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--small", type=int, default=300)
    args = parser.parse_args()
    access = os.environ.get("AWS_ACCESS_KEY_ID", "test:tester")
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY", "testing")
    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    size = args.size_mib * MiB
    bucket = f"bench-{uuid.uuid4().hex[:12]}"
    rows: list[tuple[str, str]] = []

    boto = boto3.client(
        "s3",
        endpoint_url=args.endpoint,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        region_name=region,
        config=Config(s3={"addressing_style": "path"}),
    )
    boto.create_bucket(Bucket=bucket)
    data = os.urandom(size)

    async def boto_put() -> float:
        await asyncio.to_thread(boto.put_object, Bucket=bucket, Key="boto", Body=data)
        return size / MiB

    async def boto_get() -> float:
        def get() -> int:
            body = boto.get_object(Bucket=bucket, Key="boto")["Body"]
            return sum(len(c) for c in body.iter_chunks(BLOCK))

        assert await asyncio.to_thread(get) == size
        return size / MiB

    await timed(f"boto3 put_object {args.size_mib} MiB (store alone), MiB/s", boto_put, rows)
    await timed(f"boto3 get_object {args.size_mib} MiB (store alone), MiB/s", boto_get, rows)
    data = b""  # free it before the next runs

    # -- aiobotocore ---------------------------------------------------------------------------------------
    session = get_session()
    async with session.create_client(
        "s3",
        endpoint_url=args.endpoint,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        region_name=region,
        config=AioConfig(s3={"addressing_style": "path"}, max_pool_connections=32),
    ) as s3:

        async def aio_put() -> float:
            upload = await s3.create_multipart_upload(Bucket=bucket, Key="aio")
            parts = []
            buffer = bytearray()
            async for block in block_stream(size):
                buffer += block
                if len(buffer) >= PART:
                    number = len(parts) + 1
                    r = await s3.upload_part(
                        Bucket=bucket, Key="aio", UploadId=upload["UploadId"], PartNumber=number, Body=bytes(buffer)
                    )
                    parts.append({"PartNumber": number, "ETag": r["ETag"]})
                    buffer = bytearray()
            if buffer:
                number = len(parts) + 1
                r = await s3.upload_part(
                    Bucket=bucket, Key="aio", UploadId=upload["UploadId"], PartNumber=number, Body=bytes(buffer)
                )
                parts.append({"PartNumber": number, "ETag": r["ETag"]})
            await s3.complete_multipart_upload(
                Bucket=bucket, Key="aio", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
            )
            return size / MiB

        async def aio_get() -> float:
            r = await s3.get_object(Bucket=bucket, Key="aio")
            total = 0
            async with r["Body"] as body:
                async for chunk in body.iter_chunks(BLOCK):
                    total += len(chunk)
            assert total == size
            return size / MiB

        async def aio_small() -> float:
            sem = asyncio.Semaphore(16)
            payload = os.urandom(2048)

            async def one(n: int) -> None:
                async with sem:
                    await s3.put_object(Bucket=bucket, Key=f"small/{n}", Body=payload)
                    r = await s3.get_object(Bucket=bucket, Key=f"small/{n}")
                    async with r["Body"] as body:
                        await body.read()
                    await s3.head_object(Bucket=bucket, Key=f"small/{n}")

            await asyncio.gather(*(one(n) for n in range(args.small)))
            return args.small * 3

        await timed(f"aiobotocore multipart PUT {args.size_mib} MiB, MiB/s", aio_put, rows)
        await timed(f"aiobotocore GET {args.size_mib} MiB, MiB/s", aio_get, rows)
        await timed("aiobotocore 2 KiB PUT/GET/HEAD, 16 in flight, req/s", aio_small, rows)

    # -- obstore ---------------------------------------------------------------------------------------------
    store = S3Store(
        bucket,
        endpoint=args.endpoint,
        access_key_id=access,
        secret_access_key=secret,
        region=region,
        virtual_hosted_style_request=False,
        client_options={"allow_http": True},
    )

    async def ob_put() -> float:
        await obstore.put_async(store, "ob", block_stream(size), chunk_size=PART, max_concurrency=1)
        return size / MiB

    async def ob_get() -> float:
        r = await obstore.get_async(store, "ob")
        total = 0
        async for chunk in r.stream(min_chunk_size=BLOCK):
            total += len(chunk)
        assert total == size
        return size / MiB

    async def ob_small() -> float:
        sem = asyncio.Semaphore(16)
        payload = os.urandom(2048)

        async def one(n: int) -> None:
            async with sem:
                await obstore.put_async(store, f"small-ob/{n}", payload)
                r = await obstore.get_async(store, f"small-ob/{n}")
                await r.bytes_async()
                await obstore.head_async(store, f"small-ob/{n}")

        await asyncio.gather(*(one(n) for n in range(args.small)))
        return args.small * 3

    await timed(f"obstore multipart PUT {args.size_mib} MiB, MiB/s", ob_put, rows)
    await timed(f"obstore GET {args.size_mib} MiB, MiB/s", ob_get, rows)
    await timed("obstore 2 KiB PUT/GET/HEAD, 16 in flight, req/s", ob_small, rows)

    # -- trustyard's S3Driver (aiobotocore): what a push and a pull cost through the driver -------------------
    from trustyard.storage.s3 import S3Driver

    driver = S3Driver(bucket, endpoint=args.endpoint, accesskey=access, secretkey=secret, region=region)

    async def driver_put() -> float:
        assert await driver.write("driver", block_stream(size)) == size
        return size / MiB

    async def driver_get() -> float:
        total = 0
        async for chunk in driver.read("driver"):
            total += len(chunk)
        assert total == size
        return size / MiB

    await timed(f"S3Driver.write (streamed, 10 MiB parts) {args.size_mib} MiB, MiB/s", driver_put, rows)
    await timed(f"S3Driver.read {args.size_mib} MiB, MiB/s", driver_get, rows)
    await driver.close()

    # Clean up with boto3 (one listing page at a time).
    for page in boto.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            boto.delete_object(Bucket=bucket, Key=obj["Key"])
    boto.delete_bucket(Bucket=bucket)


if __name__ == "__main__":
    asyncio.run(main())

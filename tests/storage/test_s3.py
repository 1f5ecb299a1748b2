"""S3-specific behaviour of S3Driver beyond the contract suite, against Swift's s3api and moto (real servers).

Multipart streaming and its cleanup, part splitting, multipart copies, presigned URLs, the root directory,
configuration, and faults injected by tests/storage/faults.py: retries, resumed reads, no orphaned uploads,
and no secret in any error or log line.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import traceback
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.storage.faults import Fault, FaultProxy
from tests.storage.s3_store import S3Bucket, tls_front
from tests.storage.test_driver_contract import BoomError, chunked, payload, read_all
from trustyard.errors import ObjectNotFound, StorageUnavailable
from trustyard.storage.config import StorageSettings
from trustyard.storage.driver import SERVING
from trustyard.storage.factory import build_driver
from trustyard.storage.metered import MeteredDriver
from trustyard.storage.s3 import S3Driver, _decode_parts, _Received

MiB = 1024 * 1024


@pytest.fixture(params=["swift", "moto"])
def bucket(request: pytest.FixtureRequest) -> Iterator[S3Bucket]:
    made = S3Bucket.create(request.param)
    yield made
    made.remove()


@pytest.fixture
async def driver(bucket: S3Bucket) -> AsyncIterator[S3Driver]:
    driver = bucket.driver()
    yield driver
    await driver.close()
    assert bucket.open_uploads() == [], "the test left multipart uploads behind"


@pytest.fixture
async def proxy(bucket: S3Bucket) -> AsyncIterator[FaultProxy]:
    parts = urlsplit(bucket.where.url)
    started = await FaultProxy(parts.hostname or "127.0.0.1", parts.port or 80).start()
    yield started
    await started.stop()


def _uploads_only(method: str, path: str) -> bool:
    return method == "PUT" and "uploadId=" in path


# -- multipart streaming --------------------------------------------------------------------------------


async def test_a_long_stream_becomes_a_multipart_object(driver: S3Driver, bucket: S3Bucket) -> None:
    data = payload(23 * MiB + 5, seed=3)
    assert await driver.write("t/big", chunked(data, 300_000)) == len(data)
    head = bucket.client.head_object(Bucket=bucket.name, Key="t/big")
    assert head["ETag"].strip('"').endswith("-4")  # 5 + 5 + 5 + 8 MiB: the last part is never small
    assert await read_all(driver, "t/big") == data
    assert await read_all(driver, "t/big", 5 * MiB - 3, 10 * MiB) == data[5 * MiB - 3 : 15 * MiB - 3]
    await driver.delete("t/big")


def test_received_bytes_are_copied_once_into_a_part() -> None:
    received = _Received()
    whole = payload(10)
    received.add(whole)
    assert received.take(10) is whole  # exactly one chunk: sent as it came
    for chunk in (b"abc", b"", b"defg", b"hi"):
        received.add(chunk)
    assert received.size == 9
    assert received.take(5) == b"abcde"  # across chunks, splitting one
    assert received.take(100) == b"fghi"  # at most what there is
    assert received.size == 0


async def test_a_failed_multipart_write_leaves_no_object_and_no_upload(driver: S3Driver, bucket: S3Bucket) -> None:
    with pytest.raises(BoomError):
        await driver.write("t/fail", chunked(payload(20 * MiB), MiB, fail_after=16 * MiB))
    assert bucket.open_uploads() == []
    assert bucket.keys() == []


async def test_a_cancelled_multipart_write_leaves_no_upload(driver: S3Driver, bucket: S3Bucket) -> None:
    async def endless() -> AsyncIterator[bytes]:
        block = payload(MiB)
        while True:
            yield block

    task = asyncio.create_task(driver.write("t/cancelled", endless()))
    for _ in range(200):
        await asyncio.sleep(0.05)
        if bucket.open_uploads():
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert bucket.open_uploads() == []
    assert bucket.keys() == []


async def test_a_body_is_signed_over_plain_http_only(bucket: S3Bucket, tmp_path: Path) -> None:
    """Over TLS a body goes as UNSIGNED-PAYLOAD: TLS protects it and the registry has checked its digest, while
    signing it hashed every byte once more, on the event loop. Over plain HTTP the signature covers it. Swift's
    s3api checks every signature, so it accepts both, through HAProxy's TLS front and straight."""
    data = payload(11 * MiB + 7, seed=11)  # two parts of a multipart upload (5 MiB and the rest), then a PutObject

    async def content_hashes(driver: S3Driver) -> list[str]:
        sent: list[str] = []

        def record(request: Any, **_: Any) -> None:
            value = request.headers["x-amz-content-sha256"]
            sent.append(value.decode() if isinstance(value, bytes) else value)

        client = await driver._s3()
        for operation in ("UploadPart", "PutObject"):
            client.meta.events.register(f"before-send.s3.{operation}", record)
        assert await driver.write("t/signed", chunked(data, MiB)) == len(data)
        await driver.put("t/small", b"small")
        assert await read_all(driver, "t/signed") == data
        assert await driver.get("t/small") == b"small"
        await driver.close()
        return sent

    plain = await content_hashes(bucket.driver())
    assert len(plain) == 3
    assert all(re.fullmatch("[0-9a-f]{64}", value) for value in plain), plain  # each body's SHA-256, signed
    with tls_front(bucket.where.url, tmp_path) as url:
        secure = await content_hashes(bucket.driver(endpoint=url, skipverify=True))
    assert secure == ["UNSIGNED-PAYLOAD"] * 3


async def test_a_large_part_is_split_into_several_s3_parts(driver: S3Driver) -> None:
    first, second = payload(17 * MiB, seed=1), payload(MiB, seed=2)
    upload = await driver.start_upload("t/seg")
    part1 = await driver.write_part(upload, 1, 0, chunked(first, 65536))
    part2 = await driver.write_part(upload, 2, part1.size, chunked(second, 65536))
    pieces = _decode_parts(part1.etag)
    assert pieces is not None
    assert [p.size for p in pieces] == [5 * MiB, 5 * MiB, 7 * MiB]
    await driver.complete_upload(upload, [part1, part2])
    assert await read_all(driver, "t/seg") == first + second
    await driver.delete("t/seg")


async def test_a_part_written_out_of_order_is_refused(driver: S3Driver) -> None:
    upload = await driver.start_upload("t/seg")
    part2 = await driver.write_part(upload, 2, 5 * MiB, chunked(b"tail", 2))
    part1 = await driver.write_part(upload, 1, 0, chunked(payload(5 * MiB), MiB))
    with pytest.raises(StorageUnavailable, match="written before"):
        await driver.complete_upload(upload, [part1, part2])
    await driver.abort_upload(upload)


async def test_multipart_copy_above_the_threshold(bucket: S3Bucket) -> None:
    driver = bucket.driver(copy_threshold=6 * MiB, copy_chunksize=5 * MiB)
    data = payload(12 * MiB + 1)
    await driver.write("t/src", chunked(data, MiB))
    await driver.move("t/src", "t/dst")
    assert await read_all(driver, "t/dst") == data
    assert bucket.keys() == ["t/dst"]
    assert bucket.open_uploads() == []
    await driver.delete("t/dst")
    await driver.close()


# -- URLs, root directory, configuration ------------------------------------------------------------------


async def test_presigned_urls(driver: S3Driver, bucket: S3Bucket) -> None:
    await driver.put("t/signed", b"signed bytes")
    url = await driver.redirect_url("t/signed")
    assert url is not None
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: ASYNC210 -- a test, loopback
        assert response.read() == b"signed bytes"
    head = await driver.redirect_url("t/signed", "HEAD")
    assert head is not None
    with urllib.request.urlopen(urllib.request.Request(head, method="HEAD"), timeout=10) as response:  # noqa: ASYNC210
        assert response.headers["Content-Length"] == "12"
    assert await bucket.driver(redirect=False).redirect_url("t/signed") is None
    await driver.delete("t/signed")


async def test_keys_live_under_the_root_directory(bucket: S3Bucket) -> None:
    bucket.client.put_object(Bucket=bucket.name, Key="outside", Body=b"not ours")
    driver = bucket.driver(rootdirectory="/registry/root/")
    await driver.put("docker/registry/v2/x", b"x")
    assert bucket.keys() == ["outside", "registry/root/docker/registry/v2/x"]
    assert [key async for key in driver.list("")] == ["docker/registry/v2/x"]
    await driver.delete_prefix("")
    assert bucket.keys() == ["outside"]
    bucket.client.delete_object(Bucket=bucket.name, Key="outside")
    await driver.close()


def test_a_distribution_s3_config_loads() -> None:
    config = yaml.safe_load(
        """
        s3:
          accesskey: AKIA
          secretkey: very-secret
          region: eu-de
          regionendpoint: s3.eu-de.cloud-object-storage.appdomain.cloud
          forcepathstyle: "true"
          bucket: registry
          encrypt: false
          secure: true
          skipverify: false
          v4auth: true
          chunksize: 5242880
          multipartcopychunksize: 33554432
          multipartcopymaxconcurrency: 100
          multipartcopythresholdsize: 33554432
          rootdirectory: /s3/object/name/prefix/
          storageclass: STANDARD
          objectacl: private
          useragent: ops
          usedualstack: false
          loglevel: debug
        redirect:
          disable: true
        """
    )
    settings = StorageSettings.model_validate(config)
    assert settings.driver == "s3"
    assert "very-secret" not in repr(settings)
    metered = build_driver(settings, default_root=None, patience=SERVING)  # type: ignore[arg-type]
    assert isinstance(metered, MeteredDriver)
    driver = metered.inner
    assert isinstance(driver, S3Driver)
    assert driver.root == "s3/object/name/prefix"
    assert driver.endpoint == "https://s3.eu-de.cloud-object-storage.appdomain.cloud"
    assert driver.chunksize == 5 * MiB
    assert driver.redirect is False
    with pytest.raises(ValueError, match="exactly one driver"):
        StorageSettings.model_validate({"s3": {"bucket": "b"}, "filesystem": {}})


# -- faults ------------------------------------------------------------------------------------------------


async def test_slow_down_and_throttling_are_retried(
    bucket: S3Bucket, proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    driver = bucket.driver(endpoint=proxy.url, max_attempts=4)
    proxy.plan(Fault.slow_down(), Fault.throttled(), Fault.slow_down())
    with caplog.at_level(logging.INFO, logger="trustyard.storage.s3"):
        await driver.put("t/retried", b"made it")
    # Each retry is logged at INFO, as the Swift driver logs its own.
    retries = [r.getMessage() for r in caplog.records if r.name == "trustyard.storage.s3"]
    assert len(retries) == 3
    assert all(m.startswith("s3: PutObject: ") and m.endswith("; retrying") for m in retries), retries
    assert await driver.get("t/retried") == b"made it"
    assert [kind for kind, _, _ in proxy.faulted] == ["status"] * 3
    proxy.plan(Fault.reset(), Fault.slow_down())
    data = payload(12 * MiB)
    await driver.write("t/multi", chunked(data, MiB))  # a reset and a 503 land on the first requests
    assert await read_all(driver, "t/multi") == data
    await driver.delete_prefix("t")
    await driver.close()
    assert bucket.keys() == []


async def test_a_connection_cut_mid_body_resumes_the_read(bucket: S3Bucket, proxy: FaultProxy) -> None:
    driver = bucket.driver(endpoint=proxy.url)
    data = payload(6 * MiB, seed=5)
    await driver.write("t/cut", chunked(data, MiB))
    proxy.plan(Fault.cut(2 * MiB + 3), Fault.cut(MiB), match=lambda method, _path: method == "GET")
    assert await read_all(driver, "t/cut") == data
    assert len(proxy.faulted) == 2
    await driver.delete("t/cut")
    await driver.close()


async def test_a_missing_key_while_an_object_is_replaced_is_asked_again(bucket: S3Bucket, proxy: FaultProxy) -> None:
    """Swift's S3 API answers NoSuchKey when a PUT swaps the object's files between a GET's listing and its
    open (see tests/storage/test_swift.py); the proxy gives that answer here. A read asks once more."""
    driver = bucket.driver(endpoint=proxy.url)
    await driver.put("t/x", b"the object")
    proxy.plan(Fault("status", 404, "NoSuchKey"), match=lambda method, _path: method == "GET")
    assert await driver.get("t/x") == b"the object"
    assert len(proxy.faulted) == 1
    proxy.requests.clear()
    await driver.delete("t/x")
    with pytest.raises(ObjectNotFound):
        await driver.get("t/x")
    assert [method for method, _path in proxy.requests] == ["DELETE", "GET", "GET"]
    await driver.close()


async def test_persistent_failures_end_as_storage_unavailable_and_leave_nothing(
    bucket: S3Bucket, proxy: FaultProxy
) -> None:
    driver = bucket.driver(endpoint=proxy.url, max_attempts=3)
    proxy.always(Fault.slow_down())
    proxy.match = _uploads_only  # every UploadPart fails; creating and aborting the upload work
    started = time.monotonic()
    with pytest.raises(StorageUnavailable, match=r"s3: UploadPart t/doomed: SlowDown: injected by FaultProxy"):
        await driver.write("t/doomed", chunked(payload(16 * MiB), MiB))
    assert time.monotonic() - started < 30  # bounded retries
    assert bucket.open_uploads() == []
    assert bucket.keys() == []
    proxy.always(Fault.reset())
    proxy.match = lambda _method, _path: True
    with pytest.raises(StorageUnavailable, match=r"s3: HeadObject t/x: "):
        await driver.stat("t/x")
    await driver.close()


async def test_an_unreachable_store_is_unavailable(bucket: S3Bucket) -> None:
    driver = bucket.driver(endpoint="http://127.0.0.1:9", max_attempts=2, connect_timeout=2)
    with pytest.raises(StorageUnavailable, match="s3: PutObject t/x: "):
        await driver.put("t/x", b"x")
    await driver.close()


async def test_a_one_letter_secret_key_does_not_mangle_the_error(bucket: S3Bucket) -> None:
    # Replaced everywhere, "o" made this read "C***uld n***t c***nnect t*** the end...".
    driver = bucket.driver(endpoint="http://127.0.0.1:9", secretkey="o", max_attempts=1, connect_timeout=2)
    with pytest.raises(
        StorageUnavailable, match=re.escape('Could not connect to the endpoint URL: "http://127.0.0.1:9/')
    ):
        await driver.put("t/x", b"x")
    await driver.close()


async def test_the_secret_key_never_shows(bucket: S3Bucket, caplog: pytest.LogCaptureFixture) -> None:
    if bucket.store == "moto":
        pytest.skip("moto checks no signatures")
    secret = f"wrong-secret-{uuid.uuid4().hex}"
    driver = bucket.driver(secretkey=secret, max_attempts=2)
    errors: list[BaseException] = []
    caplog.set_level(logging.DEBUG)
    for attempt in (
        driver.put("t/x", b"x"),
        driver.get("t/x"),
        driver.stat("t/x"),
        driver.write("t/big", chunked(payload(16 * MiB), MiB)),
        driver.start_upload("t/seg"),
    ):
        with pytest.raises(StorageUnavailable) as caught:
            await attempt
        errors.append(caught.value)
    await driver.close()
    assert "SignatureDoesNotMatch" in str(errors[0])
    for error in errors:
        text = "".join(traceback.format_exception(error))
        assert secret not in text
        assert secret not in repr(error)
    assert secret not in caplog.text
    assert all(secret not in str(record.args) for record in caplog.records)


async def test_missing_objects_and_uploads(driver: S3Driver) -> None:
    with pytest.raises(ObjectNotFound):
        await driver.move("t/none", "t/other")
    upload = await driver.start_upload("t/u")
    await driver.abort_upload(upload)
    with pytest.raises(ObjectNotFound):
        await driver.write_part(upload, 1, 0, chunked(b"x", 1))

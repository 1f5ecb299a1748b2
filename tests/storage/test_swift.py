"""Swift specifics the contract suite cannot see: auth (v1.0 and Keystone v3), the SLO layout in the container,
temp URLs, retries through a fault-injecting proxy, and constant memory, all against the real Swift of
scripts/object-store.sh."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.storage.faults import Fault, FaultProxy
from tests.storage.swift_store import SwiftContainer
from tests.storage.test_driver_contract import chunked, keys, payload, read_all
from trustyard.errors import ObjectNotFound, StorageUnavailable
from trustyard.storage.config import StorageSettings, SwiftStorage
from trustyard.storage.driver import SERVING
from trustyard.storage.factory import build_driver
from trustyard.storage.metered import MeteredDriver
from trustyard.storage.swift import SwiftDriver

MiB = 1024 * 1024


@pytest.fixture
def container() -> Iterator[SwiftContainer]:
    made = SwiftContainer.create()
    yield made
    assert made.leftovers() == [], "the test left objects or segments in the container"
    made.remove()


@pytest.fixture
async def swift(container: SwiftContainer) -> AsyncIterator[SwiftDriver]:
    driver = container.driver()
    yield driver
    await driver.close()


def raw_head(container: SwiftContainer, name: str) -> httpx.Response:
    return container.head(name, params={"multipart-manifest": "get"})


# -- auth ---------------------------------------------------------------------------------------------------


async def test_v1_auth_ibm_style_url_and_the_container_is_created(container: SwiftContainer) -> None:
    assert container.head().status_code == 404
    driver = container.driver(authurl=container.where.authurl.rstrip("/") + "/")  # IBM COS: .../auth/v1.0/
    try:
        await driver.put("t/x", b"x")
        assert container.head().status_code == 204
        assert container.names() == ["reg/files/t/x"]  # Distribution's swift layout: <prefix>/files/<key>
        await driver.delete("t/x")
    finally:
        await driver.close()


async def test_an_expired_token_reauthenticates_once(swift: SwiftDriver) -> None:
    await swift.put("t/x", b"x")
    assert swift.auth_count == 1
    assert swift._session_ is not None
    swift._session_ = dataclasses.replace(swift._session_, token="AUTH_tk" + "0" * 32)  # revoked or expired
    assert await swift.get("t/x") == b"x"
    assert swift.auth_count == 2
    await swift.delete("t/x")


async def test_a_read_with_an_expired_token_reauthenticates_once(swift: SwiftDriver) -> None:
    """Object bodies are read on their own (aiohttp) session, with the same token and re-authentication."""
    await swift.put("t/x", b"xyz")
    assert swift._session_ is not None
    swift._session_ = dataclasses.replace(swift._session_, token="AUTH_tk" + "0" * 32)  # revoked or expired
    assert await read_all(swift, "t/x", 1) == b"yz"
    assert swift.auth_count == 2
    await swift.delete("t/x")


async def test_wrong_credentials_say_so_without_the_secret(container: SwiftContainer) -> None:
    driver = container.driver(password="not-the-key-0xdeadbeef")
    try:
        with pytest.raises(StorageUnavailable, match="401") as caught:
            await driver.put("t/x", b"x")
        assert "not-the-key-0xdeadbeef" not in str(caught.value)
    finally:
        await driver.close()


class _Keystone(BaseHTTPRequestHandler):
    """POST /v3/auth/tokens: a Keystone v3 answer whose token and endpoint are real (from tempauth)."""

    seen: list[dict[str, Any]]
    storage_url: str
    token: str

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append({"path": self.path, "body": body})
        expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
        endpoints = [
            {"interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": "http://127.0.0.1:9/v1/X"},
            {"interface": "internal", "region_id": "RegionTwo", "url": "http://127.0.0.1:9/v1/Y"},
            {"interface": "public", "region": "RegionTwo", "region_id": "RegionTwo", "url": self.storage_url},
        ]
        catalog = [{"type": "identity", "endpoints": []}, {"type": "object-store", "endpoints": endpoints}]
        answer = json.dumps({"token": {"expires_at": expires, "catalog": catalog}}).encode()
        self.send_response(201)
        self.send_header("X-Subject-Token", self.token)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def keystone(container: SwiftContainer) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    handler = type(
        "Handler", (_Keystone,), {"seen": seen, "token": container.token, "storage_url": container.storage_url}
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v3", seen
    server.shutdown()
    server.server_close()


async def test_keystone_v3_password_auth_and_the_catalog_region(
    container: SwiftContainer, keystone: tuple[str, list[dict[str, Any]]]
) -> None:
    url, seen = keystone
    options = {"authurl": url, "tenant": "registry", "domain": "Default", "region": "RegionTwo"}
    driver = container.driver(username="alice", **options)
    try:
        await driver.put("t/x", b"via keystone")
        assert await driver.get("t/x") == b"via keystone"
        await driver.delete("t/x")
    finally:
        await driver.close()
    assert seen[0]["path"] == "/v3/auth/tokens"
    auth = seen[0]["body"]["auth"]
    assert auth["identity"]["password"]["user"] == {
        "name": "alice",
        "password": container.where.password,
        "domain": {"name": "Default"},
    }
    assert auth["scope"] == {"project": {"name": "registry", "domain": {"name": "Default"}}}
    missing = container.driver(username="alice", **{**options, "region": "Nowhere"})
    try:
        with pytest.raises(StorageUnavailable, match=r"no object-store endpoint.*Nowhere.*public@RegionTwo"):
            await missing.stat("t/x")
    finally:
        await missing.close()


def test_config_takes_distributions_swift_block() -> None:
    settings = StorageSettings.model_validate(
        {
            "swift": {
                "authurl": "https://eu-de.objectstorage.softlayer.net/auth/v1.0/",
                "username": "IBMOS123-4:alice",
                "password": "api-key",
                "container": "registry",
                "chunksize": 5 * MiB,
                "insecureskipverify": True,
                "tempurlcontainerkey": True,
                "tempurlmethods": ["GET"],
                "secretkey": "k",
                "accesskey": "ignored",
            },
            "redirect": {"disable": True},
        }
    )
    assert settings.driver == "swift"
    assert "api-key" not in repr(settings)
    metered = build_driver(settings, __import__("pathlib").Path("/nonexistent"), SERVING)
    assert isinstance(metered, MeteredDriver)
    driver = metered.inner
    assert isinstance(driver, SwiftDriver)
    assert driver._redirect is False
    minimal = {"authurl": "https://k/auth/v1.0", "username": "u", "password": "p", "container": "c"}
    with pytest.raises(ValueError, match=r"Keystone v2\.0"):
        SwiftDriver(SwiftStorage.model_validate({**minimal, "authurl": "https://k/v2.0"}))
    with pytest.raises(ValueError, match="chunksize"):
        SwiftStorage.model_validate({**minimal, "chunksize": 1000})


# -- static large objects -------------------------------------------------------------------------------------


async def test_a_large_write_is_an_slo_whose_segments_list_never_shows(
    swift: SwiftDriver, container: SwiftContainer
) -> None:
    data = payload(3 * MiB + MiB // 2)
    assert await swift.write("t/big", chunked(data, 100_000)) == len(data)
    assert raw_head(container, "reg/files/t/big").headers["X-Static-Large-Object"] == "True"
    segments = container.segments()
    assert len(segments) == 4
    assert all(name.startswith("reg/segments/writes/") for name in segments)
    assert await keys(swift, "") == ["t/big"]
    # Ranges within one segment, across one and several boundaries, to the end, past the end.
    for offset, length in [(0, 10), (MiB - 3, 6), (MiB - 1, 2 * MiB + 2), (3 * MiB, None), (5, None), (len(data), 9)]:
        end = None if length is None else offset + length
        assert await read_all(swift, "t/big", offset, length) == data[offset:end], (offset, length)
    await swift.delete("t/big")
    assert container.segments() == []


async def test_parts_are_split_into_segments_and_manifests_nest(swift: SwiftDriver, container: SwiftContainer) -> None:
    await swift.stat("t/warm-up")  # learn the cluster's limits, then pretend it allows 3 segments per manifest
    swift.max_segments = 3
    parts_data = [payload(5 * MiB + 1, seed=1), payload(2 * MiB + MiB // 2, seed=2), payload(7, seed=3)]
    upload = await swift.start_upload("t/nested")
    parts = []
    offset = 0
    for number, data in enumerate(parts_data, start=1):
        parts.append(await swift.write_part(upload, number, offset, chunked(data, 300_000)))
        offset += len(data)
    assert [p.etag.split("-")[1] for p in parts] == ["6", "3", "1"]  # 1 MiB segments
    await swift.complete_upload(upload, parts)
    whole = b"".join(parts_data)
    assert await read_all(swift, "t/nested") == whole
    assert await read_all(swift, "t/nested", 3 * MiB - 5, 4 * MiB) == whole[3 * MiB - 5 : 7 * MiB - 5]
    names = container.segments()
    # 10 segments -> 4 manifests of <= 3 segments -> 2 manifests of <= 3 manifests -> the object's manifest
    assert len([n for n in names if "/manifest/" in n]) == 4 + 2
    assert not any(n.endswith("/upload") for n in names)  # the upload marker is gone: finished
    info = await swift.stat("t/nested")
    assert info is not None
    assert info.size == len(whole)
    await swift.delete("t/nested")
    assert container.segments() == []


async def test_move_copies_the_manifest_and_replacing_drops_old_segments(
    swift: SwiftDriver, container: SwiftContainer
) -> None:
    first, second = payload(2 * MiB + 1, seed=1), payload(3 * MiB + 1, seed=2)
    await swift.write("t/up/data", chunked(first, MiB))
    segments = container.segments()
    await swift.move("t/up/data", "t/blob")
    assert container.segments() == segments  # the manifest moved, the segments stayed
    assert await keys(swift, "") == ["t/blob"]
    assert await read_all(swift, "t/blob") == first
    # Replacing a large object by write, or by move, deletes the old object's segments.
    await swift.write("t/blob", chunked(second, MiB))
    assert len(container.segments()) == 4
    await swift.write("t/up2/data", chunked(first, MiB))
    await swift.move("t/up2/data", "t/blob")
    assert len(container.segments()) == 3
    assert await read_all(swift, "t/blob") == first
    await swift.delete_prefix("t")
    assert container.leftovers() == []


async def test_complete_fails_cleanly_when_a_segment_is_gone(swift: SwiftDriver, container: SwiftContainer) -> None:
    upload = await swift.start_upload("t/seg")
    part = await swift.write_part(upload, 1, 0, chunked(payload(2 * MiB), MiB))
    victim = next(n for n in container.segments() if not n.endswith("/upload"))
    container.delete(victim)
    with pytest.raises(StorageUnavailable, match=r"400 Bad Request.*404 Not Found"):
        await swift.complete_upload(upload, [part])
    assert await swift.stat("t/seg") is None
    await swift.abort_upload(upload)
    assert container.leftovers() == []


async def test_listing_pages_and_deleting_without_bulk(swift: SwiftDriver) -> None:
    await swift.stat("t/warm-up")
    swift.page_size = 100
    names = [f"t/many/{n:04d}" for n in range(250)]
    await asyncio.gather(*(swift.put(name, b"") for name in names))
    assert await keys(swift, "t/many") == names
    swift.bulk_delete_max = 0  # a cluster without the bulk middleware: one DELETE each
    await swift.delete_prefix("t/many")
    assert await keys(swift, "") == []


# -- temp URLs --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("container_key", [True, False], ids=["container-key", "account-key"])
async def test_temp_urls(container: SwiftContainer, container_key: bool) -> None:
    driver = container.driver(secretkey="tempurl-" + container.name, tempurlcontainerkey=container_key)
    try:
        data = payload(2 * MiB + 3)
        await driver.write("t/blob", chunked(data, MiB))
        url = await driver.redirect_url("t/blob")
        assert url is not None
        assert "temp_url_sig=" in url
        assert "temp_url_expires=" in url
        assert container.name in url
        async with httpx.AsyncClient() as client:
            assert (await client.get(url)).content == data
            ranged = await client.get(url, headers={"Range": f"bytes={MiB - 1}-{MiB + 1}"})
            assert ranged.content == data[MiB - 1 : MiB + 2]
            head_url = await driver.redirect_url("t/blob", "HEAD")
            assert head_url is not None
            assert (await client.head(head_url)).headers["Content-Length"] == str(len(data))
            forged = url.replace("temp_url_sig=", "temp_url_sig=0")
            assert (await client.get(forged)).status_code == 401
        assert await driver.redirect_url("t/blob", "PUT") is None  # not in tempurlmethods
        await driver.delete("t/blob")
    finally:
        await driver.close()
        if not container_key:
            container.remove_account_tempurl_key()


async def test_no_key_no_redirect(swift: SwiftDriver) -> None:
    assert await swift.redirect_url("t/blob") is None
    assert swift.local_path("t/blob") is None


# -- faults -----------------------------------------------------------------------------------------------------


@pytest.fixture
async def proxy(container: SwiftContainer) -> AsyncIterator[FaultProxy]:
    parts = urlsplit(container.where.authurl)
    made = await FaultProxy(parts.hostname or "127.0.0.1", parts.port or 80).start()
    yield made
    await made.stop()


@pytest.fixture
async def faulty(container: SwiftContainer, proxy: FaultProxy) -> AsyncIterator[SwiftDriver]:
    """A driver whose every request (auth included) goes through the proxy."""
    driver = container.driver(authurl=proxy.url + urlsplit(container.where.authurl).path)
    await driver.stat("t/warm-up")
    assert driver._session_ is not None
    assert driver._session_.storage_url.startswith(proxy.url)  # tempauth builds it from the Host header
    yield driver
    await driver.close()


async def test_5xx_429_and_resets_are_retried(faulty: SwiftDriver, proxy: FaultProxy) -> None:
    data = payload(2 * MiB + 5)
    # Four faults in a row on one request: the fifth and last try succeeds.
    proxy.plan(Fault.slow_down(), Fault.throttled(), Fault.reset(), Fault("status", 500))
    assert await faulty.write("t/x", chunked(data, MiB)) == len(data)
    proxy.plan(Fault.reset(), Fault("status", 502))
    assert await read_all(faulty, "t/x") == data
    assert len(proxy.faulted) == 6
    await faulty.delete("t/x")


async def _write(driver: SwiftDriver) -> None:
    await driver.write("t/x", chunked(payload(3 * MiB), MiB))


async def _read(driver: SwiftDriver) -> None:
    await driver.put("t/x", b"xyz")
    await read_all(driver, "t/x")


@pytest.mark.parametrize(("method", "action"), [("PUT", _write), ("GET", _read)], ids=["api-write", "body-read"])
async def test_persistent_errors_become_storage_unavailable_without_secrets(
    faulty: SwiftDriver,
    proxy: FaultProxy,
    container: SwiftContainer,
    method: str,
    action: Callable[[SwiftDriver], Awaitable[None]],
) -> None:
    """Both HTTP clients (httpx for API calls, aiohttp for object bodies) share one retry policy: bounded, then
    an error that names the status and the server's words, never a secret."""
    proxy.always(Fault("status", 500, "InternalError"))
    proxy.match = lambda m, _path: m == method
    with pytest.raises(StorageUnavailable) as caught:
        await action(faulty)
    message = str(caught.value)
    assert "500 Injected" in message
    assert "InternalError injected by FaultProxy" in message
    assert faulty._session_ is not None
    for secret in (container.where.password, faulty._session_.token):
        assert secret not in message
    assert len(proxy.faulted) == 5  # bounded: five tries, then the error
    proxy.always(None)
    await faulty.delete("t/x")
    assert await faulty.stat("t/x") is None
    assert container.leftovers() == []


async def test_a_failed_manifest_leaves_no_object_and_no_segments(
    faulty: SwiftDriver, proxy: FaultProxy, container: SwiftContainer
) -> None:
    proxy.always(Fault("status", 503))
    proxy.match = lambda method, path: method == "PUT" and "multipart-manifest=put" in path
    with pytest.raises(StorageUnavailable, match="503"):
        await faulty.write("t/x", chunked(payload(3 * MiB), MiB))
    upload = await faulty.start_upload("t/y")
    part = await faulty.write_part(upload, 1, 0, chunked(payload(2 * MiB), MiB))
    with pytest.raises(StorageUnavailable, match="503"):
        await faulty.complete_upload(upload, [part])
    proxy.always(None)
    assert await keys(faulty, "") == []
    await faulty.abort_upload(upload)
    assert container.leftovers() == []


async def test_a_read_cut_mid_stream_resumes_where_it_stopped(faulty: SwiftDriver, proxy: FaultProxy) -> None:
    data = payload(3 * MiB)
    await faulty.write("t/x", chunked(data, MiB))
    proxy.plan(Fault.cut(MiB + 12345), Fault.cut(1000), match=lambda method, _path: method == "GET")
    assert await read_all(faulty, "t/x", 10) == data[10:]
    assert len(proxy.faulted) == 2
    proxy.match = lambda _method, _path: True
    await faulty.delete("t/x")
    with pytest.raises(ObjectNotFound):
        await read_all(faulty, "t/x")


def _object_reads(method: str, path: str) -> bool:
    return method in ("GET", "HEAD") and "/files/t/" in path


async def test_a_404_while_an_object_is_replaced_is_asked_again(faulty: SwiftDriver, proxy: FaultProxy) -> None:
    """Swift's object server answers 404 when a PUT's thread swaps the ``.data`` file between a reader's
    listdir and its open() (swift/obj/diskfile.py). That race needs a loaded machine to show, so the proxy
    gives the 404 here: every read asks a second time and gets the object."""
    data = payload(3 * MiB)
    await faulty.write("t/x", chunked(data, MiB))
    reads = [(faulty.get("t/x"), data), (read_all(faulty, "t/x"), data), (read_all(faulty, "t/x", 5, 10), data[5:15])]
    for read, expected in reads:
        proxy.plan(Fault("status", 404, "NotFound"), match=_object_reads)
        assert await read == expected
        assert len(proxy.faulted) == 1
        proxy.faulted.clear()
    proxy.plan(Fault("status", 404, "NotFound"), match=_object_reads)
    info = await faulty.stat("t/x")
    assert info is not None
    assert info.size == len(data)
    await faulty.delete("t/x")


async def test_a_delete_that_meets_a_404_while_the_object_is_replaced_still_deletes(
    faulty: SwiftDriver, proxy: FaultProxy, swift: SwiftDriver
) -> None:
    # Believing the 404, the delete returned and left the object (and its segments) in place.
    await faulty.write("t/x", chunked(payload(3 * MiB), MiB))
    proxy.plan(Fault("status", 404, "NotFound"), match=_object_reads)
    await faulty.delete("t/x")
    assert len(proxy.faulted) == 1
    assert await swift.stat("t/x") is None


async def test_a_missing_object_is_asked_for_twice_then_not_found(faulty: SwiftDriver, proxy: FaultProxy) -> None:
    def asked() -> list[str]:
        return [method for method, path in proxy.requests if _object_reads(method, path)]

    proxy.requests.clear()  # the fixture's warm-up
    assert await faulty.stat("t/none") is None
    assert asked() == ["HEAD", "HEAD"]
    for read in (faulty.get("t/none"), read_all(faulty, "t/none")):
        proxy.requests.clear()
        with pytest.raises(ObjectNotFound):
            await read
        assert asked() == ["GET", "GET"]


# -- memory -----------------------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_200_mib_streams_through_in_constant_memory(container: SwiftContainer) -> None:
    chunk_size = 8 * MiB
    driver = container.driver(chunksize=chunk_size)
    size = 200 * MiB
    block = payload(MiB)

    async def generated() -> AsyncIterator[bytes]:
        for n in range(size // len(block)):
            yield block[n:] + block[:n]  # a new object each time, as a request body would give

    try:
        await driver.stat("t/warm-up")
        tracemalloc.start()
        try:
            assert await driver.write("t/huge", generated()) == size
            write_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            total = 0
            async for chunk in driver.read("t/huge", 5 * MiB + 3):
                total += len(chunk)
            read_peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert total == size - 5 * MiB - 3
        # One segment buffered (8 MiB) plus a block or two in flight: independent of the object's size.
        assert write_peak < chunk_size + 4 * MiB, f"write peak {write_peak} for {size} bytes"
        assert read_peak < 8 * MiB, f"read peak {read_peak}"  # ~1 MiB blocks, a few in flight
        print(f"200 MiB through 8 MiB segments: write peak {write_peak / MiB:.1f} MiB, read {read_peak / MiB:.1f} MiB")
        await driver.delete("t/huge")
    finally:
        await driver.close()

"""SwiftDriver: the StorageDriver protocol on OpenStack Swift (and IBM COS's Regional Swift API).

This module owns everything Swift: authentication (v1.0 "tempauth"-style as IBM COS has it, and Keystone
v3 password auth with the object-store endpoint taken from the catalog), the HTTP calls of the Swift API
(spoken directly with httpx: the Swift API needs no request signing), retries, static large objects (SLO)
and temp URLs.

Where objects live, in the one configured container (the same names CNCF Distribution's swift driver uses,
so a container is adoptable both ways)::

    <prefix>/files/<key>                           every key of the protocol (``list`` shows only these)
    <prefix>/segments/writes/<id>/<n>              segments of one large ``write()``
    <prefix>/segments/uploads/<token>/upload       marker: the segmented upload <token> is open
    <prefix>/segments/uploads/<token>/<part>.<attempt>/<n>   segments of one attempt at one part
    <prefix>/segments/*/<id>/manifest/<n>          nested SLO manifests, when a set exceeds the segment limit

A *segment set* is one directory ``segments/<kind>/<id>/``; exactly one manifest references it at a time
(moves copy the manifest, never the segments), so deleting an object deletes its set, and replacing an
object deletes the set of the object it replaced. Large objects are SLOs, never DLOs: an SLO manifest names
its exact segments and sizes, so a reader can never see a partial or stale concatenation.

Stateless by design: an upload's ``token`` names its directory, a ``Part.etag`` encodes the attempt and its
segment count and size, so any process can continue, complete or abort any upload.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import hashlib
import hmac
import json
import logging
import random
import re
import secrets
import time
import uuid
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlsplit

import aiohttp
import httpx
from yarl import URL

from trustyard.errors import ObjectNotFound, StorageUnavailable
from trustyard.storage.config import SwiftStorage
from trustyard.storage.driver import ObjectInfo, Part, UploadState, check_key, check_prefix, check_range, redact

log = logging.getLogger(__name__)

MiB = 1024 * 1024
#: Distribution's defaults for ``chunksize`` (the segment size).
DEFAULT_CHUNK_SIZE = 20 * MiB
MIN_CHUNK_SIZE = 1 * MiB
#: Swift's container listing page limit (``container_listing_limit``).
LIST_PAGE = 10_000
#: What Swift allows per SLO manifest and per bulk delete when /info does not say.
DEFAULT_MAX_SEGMENTS = 1000
_BLOCK = MiB  # reads and buffered writes move bytes in blocks of about this size
_TEMPURL_LIFETIME = 20 * 60  # Distribution's default expiry
_REAUTH_MARGIN = 60.0  # renew a token this long before the server says it expires
_PARALLEL = 16  # concurrent single deletes when the bulk middleware is missing
_RETRY_STATUS = frozenset({408, 429, 498, 500, 502, 503, 504})
_TOKEN = re.compile(r"[0-9a-f]{32}")
_ETAG = re.compile(r"([0-9a-f]{16})-([0-9]+)-([0-9]+)")
_TAGS = re.compile(r"<[^>]*>")


R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class _Client(Generic[R]):
    """How ``_retrying`` reads an answer of one HTTP client: its status, its Retry-After, how to let it go, and
    which exceptions mean the request never got one (a timeout, a broken connection)."""

    status: Callable[[R], int]
    retry_after: Callable[[R], str | None]
    release: Callable[[R], Awaitable[None]]
    broken: tuple[type[Exception], ...]


async def _release_aiohttp(response: aiohttp.ClientResponse) -> None:
    response.release()


_HTTPX: _Client[httpx.Response] = _Client(
    lambda r: r.status_code,
    lambda r: r.headers.get("Retry-After"),
    httpx.Response.aclose,
    (httpx.TransportError, httpx.TimeoutException),
)
_AIOHTTP: _Client[aiohttp.ClientResponse] = _Client(
    lambda r: r.status,
    lambda r: r.headers.get("Retry-After"),
    _release_aiohttp,
    (TimeoutError, aiohttp.ClientError),
)


@dataclass(frozen=True, slots=True)
class _Session:
    token: str
    storage_url: str  # e.g. https://host/v1/AUTH_account, no trailing slash
    expires: float | None  # monotonic deadline, None when the server did not say


class _Blocks:
    """One buffered segment: blocks of about 1 MiB, replayable (a retried PUT sends them again)."""

    __slots__ = ("blocks", "size")

    def __init__(self, blocks: builtins.list[bytes], size: int) -> None:
        self.blocks = blocks
        self.size = size

    def content(self) -> bytes | AsyncIterator[bytes]:
        if len(self.blocks) <= 1:
            return self.blocks[0] if self.blocks else b""
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        for block in self.blocks:
            yield block


class _Segmenter:
    """Cuts a stream into segments of exactly ``size`` bytes (the last one shorter) in bounded memory.

    Small incoming chunks are coalesced into ~1 MiB blocks so a segment is a few dozen socket writes, not
    thousands; large chunks are kept as they are (no copy).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.total = 0
        self._blocks: builtins.list[bytes] = []
        self._filled = 0
        self._pending = bytearray()

    def add(self, chunk: bytes) -> builtins.list[_Blocks]:
        full: builtins.list[_Blocks] = []
        view = memoryview(chunk)
        self.total += len(chunk)
        while view:
            take = view[: self.size - self._filled]
            if not self._pending and len(take) >= _BLOCK:
                self._blocks.append(chunk if len(take) == len(chunk) else bytes(take))
            else:
                self._pending += take
                if len(self._pending) >= _BLOCK:
                    self._flush_pending()
            self._filled += len(take)
            view = view[len(take) :]
            if self._filled == self.size:
                full.append(self.take())
        return full

    def take(self) -> _Blocks:
        """The bytes gathered so far as one segment (possibly empty), and start a new one."""
        self._flush_pending()
        segment = _Blocks(self._blocks, self._filled)
        self._blocks, self._filled = [], 0
        return segment

    def _flush_pending(self) -> None:
        if self._pending:
            self._blocks.append(bytes(self._pending))
            self._pending = bytearray()


class SwiftDriver:
    name = "swift"
    #: Swift >= 2.8 takes segments of any size (``min_segment_size`` 1), but a part costs a marker check before
    #: and after its segments, and a blob of one small part an SLO manifest and its cleanup: ~10 requests for a
    #: config of a few hundred bytes. Bodies under this are parked as one small object instead, and a blob that
    #: never reaches it is put whole (services/uploads.py), about half the requests.
    min_part_size = 1024 * 1024
    #: A part is cut into segments and manifests nest, so a part is bounded only by what we let through.
    max_part_size = 5 * 1024**4

    def __init__(
        self,
        settings: SwiftStorage,
        *,
        redirect: bool = True,
        attempts: int = 5,
        backoff: float = 0.2,
        backoff_cap: float = 5.0,
        connect_timeout: float = 15.0,
        timeout: float = 60.0,
    ) -> None:
        self.settings = settings
        self.container = settings.container
        prefix = settings.prefix.strip("/")
        self._files = f"{prefix}/files/" if prefix else "files/"
        self._segments = f"{prefix}/segments/" if prefix else "segments/"
        self.chunk_size = settings.chunksize
        self._redirect = redirect
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._backoff_cap = backoff_cap
        self._version = _auth_version(settings)
        # Learned from the cluster's /info when it answers (IBM COS may not): SLO and bulk-delete limits.
        self.max_segments = DEFAULT_MAX_SEGMENTS
        self.bulk_delete_max = 0  # 0: no bulk-delete middleware, delete one by one
        self.page_size = LIST_PAGE
        self._tempurl_key: bytes | None = None
        self._methods = {m.upper() for m in settings.tempurlmethods}
        self._client = httpx.AsyncClient(
            verify=not settings.insecureskipverify,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            follow_redirects=False,
            headers={"User-Agent": "trustyard"},
        )
        # Object bodies are read with aiohttp (_get_body): httpx wakes the reader for every socket read (~32-64
        # KiB on a busy loopback) and copies each block together, ~2.8 CPU-s per GB read against ~0.35 for
        # aiohttp's buffered stream. Everything else (small requests, streamed PUTs) stays on httpx.
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._body_client: aiohttp.ClientSession | None = None
        self._session_: _Session | None = None
        self._auth_lock = asyncio.Lock()
        self._ready = False
        self._ready_lock = asyncio.Lock()
        self.auth_count = 0  # how many times we authenticated (tests and logs)
        # One publish at a time per name in this process, so that "remember the old object's segments,
        # replace it, delete them" cannot lose track of an object replaced in between (see _publish).
        self._publishing: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    # -- reading -----------------------------------------------------------------------------------------

    async def stat(self, key: str) -> ObjectInfo | None:
        response = await self._look("HEAD", self._obj(key), expect=(200, 204, 404))
        if response.status_code == 404:
            return None
        return ObjectInfo(key, int(response.headers.get("Content-Length", 0)), _modified(response.headers))

    def read(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        name = self._obj(key)
        check_range(offset, length)
        return self._read(key, name, offset, length)

    async def _read(self, key: str, name: str, offset: int, length: int | None) -> AsyncIterator[bytes]:
        if length == 0:
            if await self.stat(key) is None:
                raise ObjectNotFound(f"swift: {key} not found")
            return
        end = None if length is None else offset + length  # exclusive
        position = offset
        etag: str | None = None
        resumes = 0
        second_look = False
        while True:
            headers = {}
            if position or end is not None:
                headers["Range"] = f"bytes={position}-{'' if end is None else end - 1}"
            if etag is not None:
                headers["If-Match"] = etag  # a resumed read must continue the same object, not a replacement
            response = await self._get_body(name, headers)
            try:
                if response.status == 404:
                    if etag is None and not second_look:  # see _look: an object being replaced
                        second_look = True
                        continue
                    raise ObjectNotFound(f"swift: {key} not found")
                if response.status == 416:
                    return  # offset at or past the end (or an empty object): no bytes
                if response.status == 200 and position:
                    raise StorageUnavailable(f"swift: GET {key}: the server ignored the Range header")
                etag = response.headers.get("Etag", etag)
                try:
                    # A body that ends before its Content-Length raises ClientPayloadError: resumed below. Pieces
                    # go on as they arrived (up to 1 MiB, ~250 KiB on loopback): joining them into whole MiB
                    # cost more (~0.25 CPU-s per GB, fresh pages per block) than the fewer sends it saved.
                    async for block in response.content.iter_chunked(_BLOCK):
                        position += len(block)
                        yield block
                    return
                except (TimeoutError, aiohttp.ClientError) as exc:
                    # The connection broke mid-body: continue from where it stopped, a bounded number of times.
                    if end is not None and position >= end:
                        return
                    resumes += 1
                    if resumes >= self._attempts:
                        raise StorageUnavailable(f"swift: GET {key}: {_describe(exc)} after {resumes} tries") from None
                    log.warning("swift: GET %s broke at byte %d (%s); resuming", key, position, _describe(exc))
                    await asyncio.sleep(self._delay(resumes - 1))
            finally:
                response.release()

    async def get(self, key: str) -> bytes:
        response = await self._look("GET", self._obj(key), expect=(200, 404))
        if response.status_code == 404:
            raise ObjectNotFound(f"swift: {key} not found")
        return response.content

    def list(self, prefix: str) -> AsyncIterator[str]:
        directory = check_prefix(prefix)
        return self._list_keys(self._files + (directory + "/" if directory else ""))

    async def _list_keys(self, prefix: str) -> AsyncIterator[str]:
        async for entry in self._listing(prefix):
            yield entry["name"][len(self._files) :]

    async def _listing(self, prefix: str) -> AsyncIterator[dict[str, Any]]:
        """Every listing entry whose name starts with ``prefix``, a page of ``page_size`` at a time."""
        marker = ""
        while True:
            params = {"format": "json", "prefix": prefix, "limit": str(self.page_size)}
            if marker:
                params["marker"] = marker
            response = await self._call("GET", None, params=params, expect=(200, 204))
            page: builtins.list[dict[str, Any]] = response.json() if response.status_code == 200 else []
            for entry in page:
                yield entry
            if len(page) < self.page_size:
                return
            marker = page[-1]["name"]

    def local_path(self, key: str) -> str | None:
        return None

    async def redirect_url(self, key: str, method: str = "GET") -> str | None:
        name = self._obj(key)
        method = method.upper()
        if not self._redirect or self.settings.secretkey is None or method not in self._methods:
            return None
        session = await self._ready_session()
        if self._tempurl_key is None:
            return None  # the key could not be installed at start (logged then)
        # A temp URL signed for GET also answers HEAD (Swift's tempurl middleware), as Distribution does.
        signed = "GET" if method == "HEAD" else method
        expires = int(time.time()) + _TEMPURL_LIFETIME
        path = urlsplit(session.storage_url).path + f"/{self.container}/{name}"
        signature = hmac.new(self._tempurl_key, f"{signed}\n{expires}\n{path}".encode(), hashlib.sha256).hexdigest()
        return f"{self._url(session, name)}?temp_url_sig={signature}&temp_url_expires={expires}"

    # -- writing -----------------------------------------------------------------------------------------

    async def put(self, key: str, data: bytes) -> None:
        # For small objects (links, manifests): it does not look for segments of a large object it replaces.
        await self._call("PUT", self._obj(key), body=data, expect=(201,))

    async def write(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        name = self._obj(key)
        segmenter = _Segmenter(self.chunk_size)
        directory: str | None = None
        written: builtins.list[tuple[str, int]] = []
        published = False
        try:
            async for chunk in chunks:
                full = segmenter.add(chunk)
                while full:  # pop, not a for loop: a loop variable would keep the sent segment alive
                    directory = directory or f"{self._segments}writes/{uuid.uuid4().hex}"
                    segment_name = f"{directory}/{len(written) + 1:08d}"
                    written.append((segment_name, full[0].size))  # before the PUT: cleanup covers a half-done one
                    await self._put_segment(segment_name, full.pop(0))
            last = segmenter.take()
            if directory is None:
                # It all fit in one segment: one plain PUT, atomic by itself.
                replaced = await self._publish(name, lambda: self._put_segment(name, last))
            else:
                if last.size:
                    written.append((f"{directory}/{len(written) + 1:08d}", last.size))
                    await self._put_segment(written[-1][0], last)
                set_dir = directory
                replaced = await self._publish(name, lambda: self._put_manifest(name, written, set_dir), {set_dir})
            published = True
        finally:
            if not published and directory is not None:
                # Quietly: the error that got us here is the one to raise, a failed cleanup is logged.
                await self._quietly(self._forget(directory, [s for s, _ in written]), f"segments of {key}")
        await self._drop(replaced, name)
        return segmenter.total

    async def delete(self, key: str) -> None:
        await self._delete_object(self._obj(key))

    async def delete_prefix(self, prefix: str) -> None:
        directory = check_prefix(prefix)
        plain: builtins.list[str] = []
        large: builtins.list[str] = []
        async for entry in self._listing(self._files + (directory + "/" if directory else "")):
            (large if "slo_etag" in entry else plain).append(entry["name"])
        # SLO manifests one by one (Swift deletes their segments with them), plain objects in bulk.
        await _bounded([partial(self._delete_manifest, n) for n in large])
        await self._delete_names(plain)

    async def move(self, source: str, destination: str) -> None:
        src, dst = self._obj(source), self._obj(destination)
        head = await self._call("HEAD", src, params={"multipart-manifest": "get"}, expect=(200, 204, 404))
        if head.status_code == 404:
            raise ObjectNotFound(f"swift: {source} not found")
        large = _is_manifest(head.headers)
        keep = self._set_dirs_of(head.headers, None)

        async def copy() -> None:
            # COPY with multipart-manifest=get copies a manifest itself (a few KB), never the segment bytes.
            response = await self._call(
                "COPY",
                src,
                params={"multipart-manifest": "get"} if large else None,
                headers={"Destination": quote(f"/{self.container}/{dst}")},
                expect=(201, 404),
            )
            if response.status_code == 404:
                raise ObjectNotFound(f"swift: {source} not found")

        if head.headers.get("X-Static-Large-Object", "").lower() == "true":
            keep += await self._manifest_dirs(src)
        await self._drop(await self._publish(dst, copy, set(keep)), dst)
        # Plain DELETE: it removes the old manifest and leaves the segments, which the copy now references.
        await self._call("DELETE", src, expect=(204, 404))

    # -- segmented uploads: the token names the directory segments/uploads/<token>/ ------------------------
    # Every write attempt gets its own sub-directory ``<part>.<attempt>``, so two racing attempts at the same
    # part never share a segment, and completing assembles exactly the attempts the caller recorded.

    async def start_upload(self, key: str) -> UploadState:
        check_key(key)
        token = uuid.uuid4().hex
        await self._call("PUT", self._marker(token), body=key.encode(), expect=(201,))
        return UploadState(key, token)

    async def write_part(self, upload: UploadState, number: int, offset: int, chunks: AsyncIterable[bytes]) -> Part:
        if number < 1 or offset < 0:
            raise ValueError(f"invalid part {number} at offset {offset}")
        directory = self._upload_dir(upload)
        await self._require_open(upload)
        attempt = secrets.token_hex(8)
        segmenter = _Segmenter(self.chunk_size)
        names: builtins.list[str] = []

        async def send(segment: _Blocks) -> None:
            names.append(f"{directory}/{number:08d}.{attempt}/{len(names) + 1:08d}")
            await self._put_segment(names[-1], segment)

        done = False
        try:
            async for chunk in chunks:
                full = segmenter.add(chunk)
                while full:  # pop, not a for loop: a loop variable would keep the sent segment alive
                    await send(full.pop(0))
            last = segmenter.take()
            if last.size:
                await send(last)
            # An abort that ran while we wrote could not see our segments: check again, and undo if so.
            await self._require_open(upload)
            done = True
        finally:
            if not done:
                await self._quietly(self._forget(None, names), f"segments of upload {upload.token}")
        return Part(number, offset, segmenter.total, f"{attempt}-{len(names)}-{self.chunk_size}")

    async def complete_upload(self, upload: UploadState, parts: builtins.list[Part], key: str | None = None) -> None:
        directory = self._upload_dir(upload)
        target = self._obj(upload.key if key is None else key)  # a manifest may name segments from anywhere
        segments: builtins.list[tuple[str, int]] = []
        expected = 0
        for number, part in enumerate(parts, start=1):
            match = _ETAG.fullmatch(part.etag)
            if part.number != number or part.offset != expected or match is None:
                raise StorageUnavailable(
                    f"swift: upload {upload.token}: part {part.number} at offset {part.offset} does not "
                    f"follow the previous parts (expected part {number} at offset {expected}) or was not "
                    "written by this driver"
                )
            attempt, count, size = match[1], int(match[2]), int(match[3])
            if size < 1 or (count == 0) != (part.size == 0) or not (size * (count - 1) < part.size <= size * count):
                raise StorageUnavailable(f"swift: upload {upload.token}: part {part.number} has an inconsistent etag")
            for index in range(1, count + 1):
                segment_size = size if index < count else part.size - size * (count - 1)
                segments.append((f"{directory}/{number:08d}.{attempt}/{index:08d}", segment_size))
            expected += part.size
        await self._require_open(upload)
        if segments:
            replaced = await self._publish(target, lambda: self._put_manifest(target, segments, directory), {directory})
        else:
            replaced = await self._publish(target, lambda: self._call("PUT", target, body=b"", expect=(201,)))
        # The marker goes first: once it is gone the upload is finished and abort leaves its segments alone.
        await self._call("DELETE", self._marker(upload.token), expect=(204, 404))
        keep = {name for name, _ in segments}
        losers = [e["name"] async for e in self._listing(directory + "/") if e["name"] not in keep]
        losers = [name for name in losers if not name.startswith(f"{directory}/manifest/")]
        await self._quietly(self._delete_names(losers), f"upload {upload.token}: unused attempts")
        await self._drop(replaced, target)

    async def abort_upload(self, upload: UploadState) -> None:
        directory = self._upload_dir(upload)
        marker = self._marker(upload.token)
        head = await self._call("HEAD", marker, expect=(200, 204, 404))
        if head.status_code == 404:
            return  # aborted before, or completed: then the segments belong to the object
        names = [e["name"] async for e in self._listing(directory + "/") if e["name"] != marker]
        await self._delete_names(names)
        await self._call("DELETE", marker, expect=(204, 404))  # last: an interrupted abort can be run again

    async def sweep_staging(self, recorded: Mapping[str, Collection[str]]) -> int:
        return 0  # no local staging: an interrupted part is never completed into an object

    async def open_uploads(self, started_before: float) -> AsyncIterator[UploadState]:
        prefix = f"{self._segments}uploads/"
        async for entry in self._listing(prefix):
            token, _, rest = entry["name"][len(prefix) :].partition("/")
            if rest != "upload" or not _TOKEN.fullmatch(token):
                continue
            began = datetime.fromisoformat(entry["last_modified"]).replace(tzinfo=UTC).timestamp()
            if began < started_before:
                marker = await self._call("GET", self._marker(token), expect=(200, 404))
                if marker.status_code == 200:
                    yield UploadState(marker.content.decode(), token)

    async def close(self) -> None:
        await self._client.aclose()
        if self._body_client is not None:
            await self._body_client.close()

    # -- names -----------------------------------------------------------------------------------------------

    def _obj(self, key: str) -> str:
        return self._files + check_key(key)

    def _upload_dir(self, upload: UploadState) -> str:
        check_key(upload.key)
        if not _TOKEN.fullmatch(upload.token):
            raise ValueError(f"invalid upload token {upload.token[:100]!r}")
        return f"{self._segments}uploads/{upload.token}"

    def _marker(self, token: str) -> str:
        return f"{self._segments}uploads/{token}/upload"

    def _url(self, session: _Session, name: str | None) -> str:
        container = quote(self.container, safe="")
        return f"{session.storage_url}/{container}" + (f"/{quote(name)}" if name is not None else "")

    # -- large objects ---------------------------------------------------------------------------------------

    async def _put_segment(self, name: str, segment: _Blocks) -> None:
        await self._call("PUT", name, body=segment, expect=(201,))

    async def _put_manifest(self, name: str, segments: Iterable[tuple[str, int]], directory: str) -> None:
        """PUT an SLO manifest at ``name``; above ``max_segments`` entries, nest sub-manifests in ``directory``."""
        entries = builtins.list(segments)
        level = 0
        while len(entries) > self.max_segments:
            level += 1
            grouped: builtins.list[tuple[str, int]] = []
            for start in range(0, len(entries), self.max_segments):
                group = entries[start : start + self.max_segments]
                sub = f"{directory}/manifest/{level:02d}-{len(grouped) + 1:08d}"
                await self._put_slo(sub, group)
                grouped.append((sub, sum(size for _, size in group)))
            entries = grouped
        await self._put_slo(name, entries)

    async def _put_slo(self, name: str, entries: builtins.list[tuple[str, int]]) -> None:
        # size_bytes makes Swift check every segment at PUT time (a missing or short one fails the PUT);
        # no etags: Swift then does not recompute them, and our parts' integrity is checked by digest.
        body = json.dumps([{"path": f"/{self.container}/{n}", "size_bytes": s} for n, s in entries]).encode()
        await self._call("PUT", name, params={"multipart-manifest": "put"}, body=body, expect=(201,))

    async def _publish(
        self, name: str, replace: Callable[[], Awaitable[object]], keep: set[str] | None = None
    ) -> set[str]:
        """Run ``replace`` (which puts a new object at ``name``); the segment sets of the object it replaced,
        except ``keep`` (the new object's own), for the caller to ``_drop`` once the new object counts."""
        lock = self._publishing.get(name)
        if lock is None:
            lock = self._publishing[name] = asyncio.Lock()
        async with lock:
            # Asked once, unlike _look: a false 404 here needs another process replacing ``name`` this moment,
            # and that writer drops the old segments itself; asking twice would cost every new key a round trip.
            head = await self._call("HEAD", name, params={"multipart-manifest": "get"}, expect=(200, 204, 404))
            old: set[str] = set()
            if head.status_code != 404:
                old = set(self._set_dirs_of(head.headers, None))
                if head.headers.get("X-Static-Large-Object", "").lower() == "true":
                    old |= await self._manifest_dirs(name)
            await replace()
        return old - (keep or set())

    async def _drop(self, directories: set[str], name: str) -> None:
        for directory in sorted(directories):
            await self._quietly(self._forget(directory, []), f"segments of the object {name} replaced")

    async def _manifest_dirs(self, name: str) -> set[str]:
        """The segment-set directories an SLO manifest references (ours only; foreign segments are left)."""
        response = await self._look("GET", name, (200, 404), params={"multipart-manifest": "get"})
        if response.status_code == 404:
            return set()
        try:
            entries = response.json()
            paths = [str(entry["name"]) for entry in entries]
        except (ValueError, KeyError, TypeError):
            return set()
        dirs: set[str] = set()
        for path in paths:
            dirs.update(self._set_dirs_of({}, path.split("/", 2)[2] if path.count("/") >= 2 else None))
        return dirs

    def _set_dirs_of(self, headers: httpx.Headers | dict[str, str], segment: str | None) -> builtins.list[str]:
        """Our segment-set directory for a segment name, or for a DLO's ``X-Object-Manifest`` (as written by
        Distribution's swift driver: ``container/<prefix>/segments/abc/…``)."""
        names = []
        manifest = headers.get("X-Object-Manifest")
        if manifest:
            container, _, dlo_prefix = manifest.partition("/")
            dlo_prefix = dlo_prefix.rstrip("/")
            if container == self.container and dlo_prefix.startswith(self._segments) and dlo_prefix.count("/") > 1:
                names.append(dlo_prefix)
        if segment and segment.startswith(self._segments):
            parts = segment[len(self._segments) :].split("/")
            if len(parts) >= 3 and parts[0] in ("writes", "uploads"):
                names.append(f"{self._segments}{parts[0]}/{parts[1]}")
        return names

    async def _forget(self, directory: str | None, names: builtins.list[str]) -> None:
        """Delete a segment set: the ``names`` we know of, and whatever a listing of ``directory`` shows (a
        listing alone could miss a segment written a moment ago)."""
        found = set(names)
        if directory is not None:
            found.update([e["name"] async for e in self._listing(directory + "/")])
        await self._delete_names(sorted(found))

    async def _delete_object(self, name: str) -> None:
        # _look: a false 404 here would leave the object in place while the caller counts it deleted.
        head = await self._look("HEAD", name, (200, 204, 404), params={"multipart-manifest": "get"})
        if head.status_code == 404:
            return
        if head.headers.get("X-Static-Large-Object", "").lower() == "true":
            await self._delete_manifest(name)
            return
        await self._call("DELETE", name, expect=(204, 404))
        for directory in self._set_dirs_of(head.headers, None):  # a DLO of Distribution's: its segments too
            await self._forget(directory, [])

    async def _delete_manifest(self, name: str) -> None:
        """DELETE an SLO with its segments (nested manifests included), as one request."""
        response = await self._call(
            "DELETE",
            name,
            params={"multipart-manifest": "delete"},
            headers={"Accept": "application/json"},
            expect=(200, 404),
        )
        if response.status_code == 200:
            self._check_bulk(response, f"DELETE {name}")

    async def _delete_names(self, names: builtins.list[str]) -> None:
        if not names:
            return
        await self._ready_session()
        if self.bulk_delete_max <= 0:
            await _bounded([partial(self._call, "DELETE", n, expect=(204, 404)) for n in names])
            return
        for start in range(0, len(names), self.bulk_delete_max):
            batch = names[start : start + self.bulk_delete_max]
            body = "\n".join(quote(f"/{self.container}/{n}") for n in batch).encode()
            response = await self._call(
                "POST",
                "",
                params={"bulk-delete": ""},
                headers={"Content-Type": "text/plain", "Accept": "application/json"},
                body=body,
                expect=(200,),
                account=True,
            )
            self._check_bulk(response, f"bulk delete of {len(batch)} objects")

    def _check_bulk(self, response: httpx.Response, what: str) -> None:
        try:
            result = response.json()
            errors = result.get("Errors") or []
            status = str(result.get("Response Status", ""))
        except ValueError:
            raise StorageUnavailable(f"swift: {what}: unexpected answer {_text(response)!r}") from None
        # Objects already gone are "Number Not Found", not errors: deletes are idempotent.
        if errors or not (status.startswith("200") or status.startswith("404")):
            detail = "; ".join(f"{n}: {e}" for n, e in errors[:5]) or status
            raise StorageUnavailable(self._redact(f"swift: {what}: {detail}"))

    async def _require_open(self, upload: UploadState) -> None:
        head = await self._call("HEAD", self._marker(upload.token), expect=(200, 204, 404))
        if head.status_code == 404:
            raise ObjectNotFound(f"swift: upload {upload.token} not found")

    async def _quietly(self, cleanup: Awaitable[None], what: str) -> None:
        """Cleanup after the fact must not fail the operation that already succeeded: log it."""
        try:
            await cleanup
        except (StorageUnavailable, ObjectNotFound) as exc:
            log.warning("swift: could not delete %s: %s", what, exc)

    # -- HTTP with retries -----------------------------------------------------------------------------------

    async def _look(
        self, method: str, name: str, expect: tuple[int, ...], params: dict[str, str] | None = None
    ) -> httpx.Response:
        """A GET or HEAD of an object that asks once more when the answer is 404.

        Swift's object server can answer 404 for an object that exists while a PUT replaces it: the reader lists
        the object's directory and sees the old ``.data`` file, the PUT's thread renames the new one in and
        unlinks the old, and the reader's open() of the old name fails (swift/obj/diskfile.py ``open``). A proxy
        with one replica, or with every replica in that moment, passes the 404 on. The new file is in place
        before the old one goes, so a second request sees it; a key that is really missing costs one more
        round trip."""
        response = await self._call(method, name, params=params, expect=expect)
        if response.status_code == 404:
            response = await self._call(method, name, params=params, expect=expect)
        return response

    async def _call(
        self,
        method: str,
        name: str | None,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | _Blocks | None = None,
        expect: tuple[int, ...],
        stream: bool = False,
        account: bool = False,
    ) -> httpx.Response:
        """One Swift API request on the container (``name`` None), an object, or the account, with
        ``_retrying``'s retries and re-authentication. Every Swift request we send is idempotent (PUT replaces,
        DELETE of a missing object is fine, COPY rewrites the same destination) and every body is in memory,
        so each may be sent again."""
        what = f"{method} {'account' if account else name if name is not None else self.container}"

        async def send(session: _Session) -> httpx.Response:
            url = session.storage_url if account else self._url(session, name)
            content = body.content() if isinstance(body, _Blocks) else body
            request_headers = {"X-Auth-Token": session.token, **(headers or {})}
            if isinstance(body, _Blocks):
                request_headers["Content-Length"] = str(body.size)
            request = self._client.build_request(method, url, params=params, headers=request_headers, content=content)
            return await self._client.send(request, stream=stream)

        response = await self._retrying(what, send, _HTTPX)
        if response.status_code in expect:
            return response
        if stream:
            await response.aread()
        await response.aclose()
        raise StorageUnavailable(self._redact(f"swift: {what}: {_status(response)}"))

    def _body_session(self) -> aiohttp.ClientSession:
        """The aiohttp session object bodies are read with, made on first use (inside the event loop), with the
        API client's trust store, timeouts and environment (proxies)."""
        if self._body_client is None or self._body_client.closed:
            self._body_client = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=64, ssl=httpx.create_ssl_context(verify=not self.settings.insecureskipverify)
                ),
                timeout=aiohttp.ClientTimeout(total=None, connect=self._connect_timeout, sock_read=self._timeout),
                headers={"User-Agent": "trustyard"},
                auto_decompress=False,  # the bytes as stored: a blob is never content-encoded on the way out
                trust_env=True,
            )
        return self._body_client

    async def _get_body(self, name: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
        """GET ``name`` for its body (200, 206, 404 or 416), with ``_retrying``'s retries and
        re-authentication; the caller reads the body and releases the response."""
        client = self._body_session()

        async def send(session: _Session) -> aiohttp.ClientResponse:
            # encoded=True: _url quoted the name already; yarl must not normalise it a second time.
            url = URL(self._url(session, name), encoded=True)
            return await client.get(url, headers={"X-Auth-Token": session.token, **headers})

        response = await self._retrying(f"GET {name}", send, _AIOHTTP)
        if response.status in (200, 206, 404, 416):
            return response
        try:
            text = " ".join(_TAGS.sub(" ", await response.text(errors="replace")).split())[:300]
        except (TimeoutError, aiohttp.ClientError):
            text = ""
        finally:
            response.release()
        status = f"{response.status} {response.reason}" + (f": {text}" if text else "")
        raise StorageUnavailable(self._redact(f"swift: GET {name}: {status}"))

    async def _retrying(self, what: str, send: Callable[[_Session], Awaitable[R]], client: _Client[R]) -> R:
        """``send`` until an answer that is not retried, which is returned whatever its status.

        Retried, with exponential backoff and jitter: 5xx, 408, 429 and 498 (honouring a short Retry-After),
        timeouts and broken connections, up to the driver's ``attempts``. A 401 re-authenticates once (the
        token expired or was revoked). One policy for both HTTP clients (``_Client`` says how each one shows a
        status and lets a response go): httpx for the API, aiohttp for object bodies.
        """
        session = await self._ready_session()
        reauthenticated = False
        attempt = 0
        while True:
            try:
                response = await send(session)
            except client.broken as exc:
                attempt += 1
                if attempt >= self._attempts:
                    raise StorageUnavailable(f"swift: {what}: {_describe(exc)} ({attempt} tries)") from None
                log.info("swift: %s: %s; retrying", what, _describe(exc))
                await asyncio.sleep(self._delay(attempt - 1))
                continue
            status = client.status(response)
            if status == 401 and not reauthenticated:
                await client.release(response)
                reauthenticated = True
                session = await self._authenticate(stale=session)
                continue
            if status in _RETRY_STATUS and attempt + 1 < self._attempts:
                attempt += 1
                delay = self._delay(attempt - 1, client.retry_after(response))
                await client.release(response)
                log.info("swift: %s: %s; retrying in %.2fs", what, status, delay)
                await asyncio.sleep(delay)
                continue
            return response

    def _delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after is not None:
            with contextlib.suppress(ValueError):
                return min(float(retry_after), self._backoff_cap)
        ceiling = min(self._backoff_cap, self._backoff * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)  # jitter: many clients retrying do not retry in lockstep

    def _redact(self, message: str) -> str:
        """Belt and braces: no secret may end up in an error message, whatever a server echoed back."""
        secrets_ = [self.settings.password.get_secret_value()]
        if self.settings.secretkey is not None:
            secrets_.append(self.settings.secretkey.get_secret_value())
        if self._session_ is not None:
            secrets_.append(self._session_.token)
        return redact(message, secrets_)

    # -- authentication and first-use setup ---------------------------------------------------------------

    async def _ready_session(self) -> _Session:
        """A valid session, after the one-time setup (container, cluster limits, temp-URL key)."""
        session = self._session_
        if session is None or (session.expires is not None and time.monotonic() > session.expires):
            session = await self._authenticate(stale=session)
        if not self._ready:
            async with self._ready_lock:
                if not self._ready:
                    await self._setup(session)
                    self._ready = True
        return session

    async def _authenticate(self, stale: _Session | None) -> _Session:
        async with self._auth_lock:
            # Another task may have renewed the token while we waited for the lock.
            if self._session_ is not None and self._session_ is not stale:
                return self._session_
            authenticate = self._auth_v3 if self._version == 3 else self._auth_v1
            self._session_ = await authenticate()
            self.auth_count += 1
            return self._session_

    async def _auth_request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = await self._client.request(method, url, **kwargs)
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                attempt += 1
                if attempt >= self._attempts:
                    raise StorageUnavailable(f"swift: authentication at {url}: {_describe(exc)}") from None
                await asyncio.sleep(self._delay(attempt - 1))
                continue
            if response.status_code in _RETRY_STATUS and attempt + 1 < self._attempts:
                attempt += 1
                await asyncio.sleep(self._delay(attempt - 1, response.headers.get("Retry-After")))
                continue
            return response

    async def _auth_v1(self) -> _Session:
        url = self.settings.authurl
        response = await self._auth_request(
            "GET",
            url,
            headers={"X-Auth-User": self.settings.username, "X-Auth-Key": self.settings.password.get_secret_value()},
        )
        token, storage_url = response.headers.get("X-Auth-Token"), response.headers.get("X-Storage-Url")
        if response.status_code not in (200, 204) or not token or not storage_url:
            raise StorageUnavailable(self._redact(f"swift: authentication at {url} failed: {_status(response)}"))
        return _Session(token, storage_url.rstrip("/"), _expiry(response.headers.get("X-Auth-Token-Expires")))

    async def _auth_v3(self) -> _Session:
        s = self.settings
        url = s.authurl.rstrip("/")
        if not url.endswith("/auth/tokens"):
            url += "/auth/tokens"
        user: dict[str, Any] = {"name": s.username, "password": s.password.get_secret_value()}
        user_domain = _ref(s.domainid, s.domain)
        if user_domain:
            user["domain"] = user_domain
        scope: dict[str, Any] | None = None
        if s.trustid:
            scope = {"OS-TRUST:trust": {"id": s.trustid}}
        elif s.tenantid:
            scope = {"project": {"id": s.tenantid}}
        elif s.tenant:
            project_domain = _ref(s.tenantdomainid, s.tenantdomain) or user_domain or {"id": "default"}
            scope = {"project": {"name": s.tenant, "domain": project_domain}}
        auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": user}}}
        if scope is not None:
            auth["scope"] = scope
        response = await self._auth_request("POST", url, json={"auth": auth})
        token = response.headers.get("X-Subject-Token")
        if response.status_code not in (200, 201) or not token:
            raise StorageUnavailable(
                self._redact(f"swift: Keystone authentication at {url} failed: {_status(response)}")
            )
        try:
            body = response.json()["token"]
            catalog = body.get("catalog") or []
        except (ValueError, KeyError, TypeError, AttributeError):
            raise StorageUnavailable(f"swift: Keystone at {url} answered without a token body") from None
        interface = (s.endpointtype or "public").lower().removesuffix("url")  # also accept publicURL
        seen: builtins.list[str] = []
        for service in catalog:
            if service.get("type") != "object-store":
                continue
            for endpoint in service.get("endpoints", []):
                region = endpoint.get("region_id") or endpoint.get("region") or ""
                seen.append(f"{endpoint.get('interface')}@{region}")
                if endpoint.get("interface") != interface:
                    continue
                if s.region and s.region not in (endpoint.get("region_id"), endpoint.get("region")):
                    continue
                return _Session(token, str(endpoint["url"]).rstrip("/"), _keystone_expiry(body.get("expires_at")))
        raise StorageUnavailable(
            f"swift: Keystone's catalog has no object-store endpoint for interface {interface!r}"
            f"{f' in region {s.region!r}' if s.region else ''}; it has: {', '.join(seen) or 'none'}"
        )

    async def _setup(self, session: _Session) -> None:
        await self._read_info(session)
        # HEAD before PUT: a user allowed to write objects may not be allowed to create containers.
        head = await self._call_raw(session, "HEAD", self._url(session, None))
        if head.status_code == 404:
            created = await self._call_raw(session, "PUT", self._url(session, None))
            if created.status_code not in (201, 202):
                raise StorageUnavailable(f"swift: creating container {self.container!r}: {_status(created)}")
        elif head.status_code not in (200, 204):
            raise StorageUnavailable(f"swift: container {self.container!r}: {_status(head)}")
        if self._redirect and self.settings.secretkey is not None:
            await self._install_tempurl_key(session, head if head.status_code != 404 else None)

    async def _call_raw(self, session: _Session, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Setup requests: no setup recursion, the same retries as authentication."""
        headers = {"X-Auth-Token": session.token, **kwargs.pop("headers", {})}
        response = await self._auth_request(method, url, headers=headers, **kwargs)
        return response

    async def _read_info(self, session: _Session) -> None:
        parts = urlsplit(session.storage_url)
        try:
            response = await self._client.get(f"{parts.scheme}://{parts.netloc}/info", timeout=10.0)
            info = response.json() if response.status_code == 200 else {}
        except (httpx.HTTPError, ValueError):
            info = {}
        slo = info.get("slo") or {}
        self.max_segments = int(slo.get("max_manifest_segments") or DEFAULT_MAX_SEGMENTS)
        if "bulk_delete" in info:
            self.bulk_delete_max = int((info["bulk_delete"] or {}).get("max_deletes_per_request") or 1000)
        listing = (info.get("swift") or {}).get("container_listing_limit")
        if listing:
            self.page_size = min(int(listing), LIST_PAGE)

    async def _install_tempurl_key(self, session: _Session, container_head: httpx.Response | None) -> None:
        """Make ``secretkey`` a temp-URL key of the container (``tempurlcontainerkey``) or the account.

        A key already set (as key 1 or 2) is left alone; otherwise it becomes key 1, as Distribution does.
        Failing that (no permission), redirects are off: a URL signed with a key Swift does not know would
        only give clients 401s.
        """
        assert self.settings.secretkey is not None
        key = self.settings.secretkey.get_secret_value()
        if self.settings.tempurlcontainerkey:
            url, scope = self._url(session, None), "Container"
            head = container_head or await self._call_raw(session, "HEAD", url)
        else:
            url, scope = session.storage_url, "Account"
            head = await self._call_raw(session, "HEAD", url)
        names = (f"X-{scope}-Meta-Temp-Url-Key", f"X-{scope}-Meta-Temp-Url-Key-2")
        if key not in [head.headers.get(n) for n in names]:
            posted = await self._call_raw(session, "POST", url, headers={names[0]: key})
            if posted.status_code not in (200, 202, 204):
                log.warning(
                    "swift: cannot set the %s temp-URL key (%s): blob redirects are off",
                    scope.lower(),
                    self._redact(_status(posted)),
                )
                return
        self._tempurl_key = key.encode()


# -- helpers ------------------------------------------------------------------------------------------------


def _auth_version(settings: SwiftStorage) -> int:
    version = settings.authversion or 0
    if version == 0:  # Distribution (ncw/swift) guesses from the URL
        url = settings.authurl.lower()
        version = 3 if "/v3" in url else 2 if "/v2" in url else 1
    if version == 2:
        raise ValueError("swift: Keystone v2.0 auth is not supported (removed from Keystone); use authversion 3")
    if version not in (1, 3):
        raise ValueError(f"swift: authversion must be 1 or 3, not {version}")
    return version


def _ref(identifier: str | None, name: str | None) -> dict[str, str] | None:
    if identifier:
        return {"id": identifier}
    if name:
        return {"name": name}
    return None


def _expiry(seconds: str | None) -> float | None:
    try:
        return time.monotonic() + float(seconds) - _REAUTH_MARGIN if seconds else None
    except ValueError:
        return None


def _keystone_expiry(expires_at: str | None) -> float | None:
    if not expires_at:
        return None
    try:
        when = datetime.fromisoformat(expires_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
    return time.monotonic() + (when - time.time()) - _REAUTH_MARGIN


def _modified(headers: httpx.Headers) -> float:
    with contextlib.suppress(ValueError):
        return float(headers.get("X-Timestamp", ""))
    with contextlib.suppress(TypeError, ValueError):
        return parsedate_to_datetime(headers.get("Last-Modified", "")).timestamp()
    return time.time()


def _is_manifest(headers: httpx.Headers) -> bool:
    return headers.get("X-Static-Large-Object", "").lower() == "true" or "X-Object-Manifest" in headers


def _text(response: httpx.Response) -> str:
    try:
        text = response.text
    except (httpx.ResponseNotRead, UnicodeDecodeError):
        return ""
    return " ".join(_TAGS.sub(" ", text).split())[:300]


def _status(response: httpx.Response) -> str:
    text = _text(response)
    return f"{response.status_code} {response.reason_phrase}" + (f": {text}" if text else "")


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _bounded(calls: builtins.list[Callable[[], Awaitable[object]]]) -> None:
    """Run ``calls`` with at most _PARALLEL in flight; the first failure propagates."""
    semaphore = asyncio.Semaphore(_PARALLEL)

    async def run(call: Callable[[], Awaitable[object]]) -> None:
        async with semaphore:
            await call()

    for start in range(0, len(calls), 1000):  # bounded number of pending tasks too
        await asyncio.gather(*(run(call) for call in calls[start : start + 1000]))

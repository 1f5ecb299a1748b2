"""S3Driver: the StorageDriver protocol on any S3 API (AWS, IBM COS, MinIO, Ceph, Swift's s3api), via aiobotocore.

Key ``a/b`` is the object ``<rootdirectory>/a/b`` in the bucket, so a bucket written by CNCF Distribution's
s3 driver (same ``rootdirectory``) is served as is, and the other way round.

This module owns how the protocol maps onto S3 requests:

* ``put`` / small ``write``: one PutObject. A ``write`` whose stream outgrows one part becomes a multipart
  upload (parts of ``chunksize``, doubling every 1,000 parts so an object stays under S3's 10,000), assembled
  server-side, and aborted on any failure: no visible object and no orphaned upload.
* Segmented uploads: ``start_upload`` = CreateMultipartUpload on the final key (``UploadState.token`` is the
  UploadId). ``write_part`` streams the caller's part as one or more S3 parts numbered after every part the
  upload already has (ListParts), so a rewrite or a racing attempt never overwrites bytes another attempt
  recorded; the S3 part numbers and ETags go into ``Part.etag`` and the driver keeps no state.
  ``complete_upload`` = CompleteMultipartUpload of exactly those parts (into another key: then a ``move``);
  ``abort_upload`` = AbortMultipartUpload.
* ``move``: CopyObject (UploadPartCopy in parallel above ``multipartcopythresholdsize``, at most 5 GiB), then
  DeleteObject. ``read``: ranged GETs that resume where they stopped when a connection drops mid-body.
  ``list``: ListObjectsV2 pages. ``delete_prefix``: DeleteObjects in batches of 1,000, with the Content-MD5
  that Swift's s3api, IBM COS and older Ceph/MinIO demand. ``redirect_url``: presigned GET/HEAD URLs.

Faults: botocore's "standard" retry mode retries 5xx, 429/SlowDown/throttling, timeouts and connection errors
with exponential backoff and full jitter, a bounded number of times. What still fails becomes
``StorageUnavailable`` with the backend's own code and message, scrubbed of the secret key and session token
(``ObjectNotFound`` for a missing key or upload). Request bodies are ``bytes``, so every retry resends them.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import contextlib
import hashlib
import logging
import random
import re
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from trustyard.errors import ObjectNotFound, StorageUnavailable
from trustyard.storage.driver import (
    ObjectInfo,
    Part,
    Patience,
    UploadState,
    check_key,
    check_prefix,
    check_range,
    redact,
)

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

    from trustyard.storage.config import S3Storage

log = logging.getLogger(__name__)

MiB = 1024 * 1024
#: S3's limits: every part but the last at least 5 MiB, at most 5 GiB, at most 10,000 parts per upload.
MIN_PART = 5 * MiB
MAX_PART = 5 * 1024**3
MAX_PARTS = 10_000
#: Part sizes double after this many parts, so a stream of unknown length never runs out of part numbers.
_GROW_EVERY = 1_000
_READ_CHUNK = MiB
_DELETE_BATCH = 1_000
_PRESIGN_SECONDS = 20 * 60  # what Distribution's s3 driver signs for
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_ETAG_PREFIX = "s3:"
_ETAG_ENTRY = re.compile(r"([1-9][0-9]{0,4})=([0-9A-Za-z_-]{1,128})")
# What a dropped connection or a stalled read looks like while a response body streams.
_STREAM_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, BotoCoreError, ConnectionError)


@dataclass(frozen=True, slots=True)
class _Uploaded:
    number: int
    etag: str  # without the quotes S3 puts around it
    size: int


class _Received:
    """Bytes received and not yet sent, kept as the chunks they came in: a part's body is joined from them
    once (``take``), where a growing ``bytearray`` sliced into ``bytes`` copied every byte three times and kept
    the buffer's high-water mark allocated (measured: +62 MiB of peak RSS for one 64 MiB push, 10 MiB parts)."""

    def __init__(self) -> None:
        self._chunks: deque[memoryview] = deque()
        self.size = 0

    def add(self, chunk: bytes) -> None:
        if chunk:
            self._chunks.append(memoryview(chunk))
            self.size += len(chunk)

    def take(self, size: int) -> bytes:
        """The first ``size`` bytes (at most what there is), removed."""
        taken: builtins.list[memoryview] = []
        need = min(size, self.size)
        self.size -= need
        while need:
            chunk = self._chunks.popleft()
            if len(chunk) > need:
                self._chunks.appendleft(chunk[need:])
                chunk = chunk[:need]
            taken.append(chunk)
            need -= len(chunk)
        whole = taken[0].obj if len(taken) == 1 else None
        if isinstance(whole, bytes) and len(whole) == len(taken[0]):
            return whole  # one chunk, exactly: no copy
        return b"".join(taken)


class S3Driver:
    name = "s3"
    min_part_size = MIN_PART
    max_part_size = MAX_PART

    def __init__(
        self,
        bucket: str,
        *,
        rootdirectory: str = "",
        region: str = "us-east-1",
        endpoint: str | None = None,
        accesskey: str | None = None,
        secretkey: str | None = None,
        sessiontoken: str | None = None,
        forcepathstyle: bool = False,
        secure: bool = True,
        skipverify: bool = False,
        chunksize: int = 10 * MiB,
        storageclass: str | None = None,
        redirect: bool = True,
        encrypt: bool = False,
        keyid: str | None = None,
        objectacl: str | None = None,
        copy_threshold: int = 512 * MiB,
        copy_chunksize: int = 256 * MiB,
        copy_concurrency: int = 4,
        useragent: str | None = None,
        usedualstack: bool = False,
        accelerate: bool = False,
        max_attempts: int = 5,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_connections: int = 32,
    ) -> None:
        if not MIN_PART <= chunksize <= MAX_PART:
            raise ValueError(f"s3: chunksize must be between {MIN_PART} and {MAX_PART} bytes, not {chunksize}")
        if not MIN_PART <= copy_chunksize <= MAX_PART:
            raise ValueError(f"s3: multipartcopychunksize must be between {MIN_PART} and {MAX_PART} bytes")
        if copy_threshold > MAX_PART:
            raise ValueError(f"s3: multipartcopythresholdsize must be at most {MAX_PART} bytes (CopyObject's limit)")
        self.bucket = bucket
        self.root = rootdirectory.strip("/")
        self.chunksize = chunksize
        self.redirect = redirect
        self._copy_threshold = copy_threshold
        self._copy_chunksize = copy_chunksize
        self._copy_concurrency = max(1, copy_concurrency)
        if endpoint and "://" not in endpoint:
            endpoint = ("https://" if secure else "http://") + endpoint
        self.endpoint = endpoint
        tls = endpoint.startswith("https://") if endpoint else secure
        # Extra arguments of every request that creates an object (PutObject, CreateMultipartUpload, CopyObject).
        self._create_args: dict[str, Any] = {}
        if storageclass and storageclass.upper() != "NONE":
            self._create_args["StorageClass"] = storageclass
        if encrypt:
            self._create_args["ServerSideEncryption"] = "aws:kms" if keyid else "AES256"
            if keyid:
                self._create_args["SSEKMSKeyId"] = keyid
        if objectacl and objectacl != "private":
            self._create_args["ACL"] = objectacl
        self._secrets = [s for s in (secretkey, sessiontoken) if s]
        self._client_args: dict[str, Any] = {
            "region_name": region,
            "endpoint_url": endpoint,
            "use_ssl": secure,
            "verify": not skipverify,
            "aws_access_key_id": accesskey or None,
            "aws_secret_access_key": secretkey or None,
            "aws_session_token": sessiontoken or None,
            "config": AioConfig(
                region_name=region,
                signature_version="s3v4",
                # total_max_attempts: botocore's "max_attempts" counts the retries only (5 made 6 tries).
                retries={"mode": "standard", "total_max_attempts": max_attempts},
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                max_pool_connections=max_connections,
                user_agent_extra=f"trustyard {useragent}" if useragent else "trustyard",
                s3={
                    "addressing_style": "path" if forcepathstyle else "auto",
                    "use_dualstack_endpoint": usedualstack,
                    "use_accelerate_endpoint": accelerate,
                    # Over TLS a body is sent as UNSIGNED-PAYLOAD, as the AWS Java SDK's AWS4UnsignedPayloadSigner
                    # does: TLS protects it in transit and the registry has checked its digest, while signing it
                    # hashed every byte once more with SHA-256, on the event loop (8 ms per 10 MiB part here;
                    # the driver's CPU per GB written fell by 40 %). Over plain HTTP the signature still covers
                    # the body (botocore's default, None), so nobody on the path can swap it.
                    "payload_signing_enabled": False if tls else None,
                },
                # CRC32 headers on every part cost CPU and some S3 implementations reject the trailers; S3
                # still checks Content-Length, and the registry checks every blob's digest itself.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        }
        self._client: S3Client | None = None
        self._client_context: Any = None
        self._lock = asyncio.Lock()
        self._max_attempts = max_attempts

    @classmethod
    def from_settings(cls, settings: S3Storage, *, redirect: bool | None = None, patience: Patience) -> S3Driver:
        """The driver a Distribution-style ``storage: s3:`` section describes, waiting as ``patience`` says."""
        return cls(
            settings.bucket,
            rootdirectory=settings.rootdirectory,
            region=settings.region,
            endpoint=settings.regionendpoint,
            accesskey=settings.accesskey,
            secretkey=settings.secretkey.get_secret_value() if settings.secretkey else None,
            sessiontoken=settings.sessiontoken.get_secret_value() if settings.sessiontoken else None,
            forcepathstyle=settings.forcepathstyle,
            secure=settings.secure,
            skipverify=settings.skipverify,
            chunksize=settings.chunksize,
            storageclass=settings.storageclass,
            redirect=settings.redirect if redirect is None else redirect,
            encrypt=settings.encrypt,
            keyid=settings.keyid,
            objectacl=settings.objectacl,
            copy_threshold=settings.multipartcopythresholdsize,
            copy_chunksize=settings.multipartcopychunksize,
            copy_concurrency=settings.multipartcopymaxconcurrency,
            useragent=settings.useragent,
            usedualstack=settings.usedualstack,
            accelerate=settings.accelerate,
            max_attempts=patience.attempts,
            connect_timeout=patience.connect_timeout,
            read_timeout=patience.read_timeout,
        )

    # -- reading -----------------------------------------------------------------------------------------

    async def stat(self, key: str) -> ObjectInfo | None:
        s3 = await self._s3()
        try:
            head = await s3.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if _code(exc) in _MISSING_CODES:
                return None
            self._raise("HeadObject", key, exc)
        except _STREAM_ERRORS as exc:
            self._raise("HeadObject", key, exc)
        return ObjectInfo(key, head["ContentLength"], head["LastModified"].timestamp())

    async def get(self, key: str) -> bytes:
        return b"".join([chunk async for chunk in self.read(key)])

    def read(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        return self._read(self._key(key), key, offset, length)

    async def _read(self, full: str, key: str, offset: int, length: int | None) -> AsyncIterator[bytes]:
        check_range(offset, length)
        s3 = await self._s3()
        if length == 0:
            if await self.stat(key) is None:
                raise ObjectNotFound(f"s3: {key} not found")
            return
        position, end = offset, None if length is None else offset + length  # end is exclusive
        etag: str | None = None
        attempt = 0
        second_look = False
        while True:
            args: dict[str, Any] = {"Bucket": self.bucket, "Key": full}
            if position > 0 or end is not None:
                args["Range"] = f"bytes={position}-{'' if end is None else end - 1}"
            if etag is not None:
                args["IfMatch"] = etag  # a resumed read must continue the same object, not a replacement
            try:
                response = await s3.get_object(**args)
            except ClientError as exc:
                code = _code(exc)
                if code in _MISSING_CODES and etag is None and not second_look:
                    # Swift's S3 API can answer NoSuchKey while a PUT replaces the object (its object server
                    # swaps the files between a reader's listing and open; the swift driver's _look says
                    # how). A GET is made for an object the caller expects, so it asks once more; stat, the
                    # push path's probe for a new key, does not: a false "missing" there only writes again.
                    second_look = True
                    continue
                if code in _MISSING_CODES:
                    raise ObjectNotFound(f"s3: {key} not found") from None
                if code == "InvalidRange" and etag is None:
                    # Reading from at or past the end: nothing to yield, if the object exists at all.
                    if await self.stat(key) is None:
                        raise ObjectNotFound(f"s3: {key} not found") from None
                    return
                if code == "PreconditionFailed":
                    raise StorageUnavailable(f"s3: {key} was replaced while it was being read") from None
                self._raise("GetObject", key, exc)
            except _STREAM_ERRORS as exc:
                self._raise("GetObject", key, exc)
            etag = etag or response.get("ETag")
            expected = response["ContentLength"]
            received = 0
            try:
                async with response["Body"] as body:
                    async for chunk in body.iter_chunks(_READ_CHUNK):
                        received += len(chunk)
                        position += len(chunk)
                        yield chunk
                if received >= expected:
                    return
                failure: BaseException = StorageUnavailable(f"s3: GetObject {key}: body ended early")
            except _STREAM_ERRORS as exc:
                failure = exc
            # The connection dropped mid-body: continue from the next byte with a new ranged GET.
            attempt += 1
            if attempt >= self._max_attempts:
                self._raise("GetObject", key, failure)
            await asyncio.sleep(_backoff(attempt))

    def list(self, prefix: str) -> AsyncIterator[str]:
        return self._list(check_prefix(prefix))

    async def _list(self, prefix: str) -> AsyncIterator[str]:
        s3 = await self._s3()
        root = f"{self.root}/" if self.root else ""
        full = f"{root}{prefix}/" if prefix else root
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": full, "MaxKeys": 1000}
        while True:
            try:
                page = await s3.list_objects_v2(**args)
            except (ClientError, *_STREAM_ERRORS) as exc:
                self._raise("ListObjectsV2", prefix or "/", exc)
            for entry in page.get("Contents", []):
                name = entry["Key"][len(root) :]
                if name and not name.endswith("/"):  # "folder" markers some tools create are not keys
                    yield name
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            args["ContinuationToken"] = token

    def local_path(self, key: str) -> str | None:
        return None

    async def redirect_url(self, key: str, method: str = "GET") -> str | None:
        if not self.redirect:
            return None
        operations = {"GET": "get_object", "HEAD": "head_object"}
        if method.upper() not in operations:
            return None
        s3 = await self._s3()
        url: str = await s3.generate_presigned_url(
            operations[method.upper()],
            Params={"Bucket": self.bucket, "Key": self._key(key)},
            ExpiresIn=_PRESIGN_SECONDS,
        )
        return url

    # -- writing -----------------------------------------------------------------------------------------

    async def put(self, key: str, data: bytes) -> None:
        full = self._key(key)
        s3 = await self._s3()
        try:
            await s3.put_object(Bucket=self.bucket, Key=full, Body=bytes(data), **self._create_args)
        except (ClientError, *_STREAM_ERRORS) as exc:
            self._raise("PutObject", key, exc)

    async def write(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        full = self._key(key)
        stream = aiter(chunks)
        received = _Received()
        # Up to one part (plus the minimum a last part may need) goes out as one PutObject.
        async for chunk in stream:
            received.add(chunk)
            if received.size >= self.chunksize + MIN_PART:
                break
        else:
            size = received.size
            await self.put(key, received.take(size))
            return size
        s3 = await self._s3()
        upload_id = await self._create_upload(s3, full, key)
        try:
            parts = await self._upload_stream(s3, full, key, upload_id, stream, 1, received)
            await self._complete(s3, full, key, upload_id, parts)
        except BaseException:
            await self._abort_quietly(full, upload_id)
            raise
        return sum(part.size for part in parts)

    async def delete(self, key: str) -> None:
        full = self._key(key)
        s3 = await self._s3()
        try:
            await s3.delete_object(Bucket=self.bucket, Key=full)
        except ClientError as exc:
            if _code(exc) not in _MISSING_CODES:
                self._raise("DeleteObject", key, exc)
        except _STREAM_ERRORS as exc:
            self._raise("DeleteObject", key, exc)

    async def delete_prefix(self, prefix: str) -> None:
        prefix = check_prefix(prefix)
        batch: builtins.list[str] = []
        # Listing first and deleting after each full batch: pages stay valid as S3 listings are snapshots
        # per request, and a continuation token survives deletes of keys already listed.
        async for key in self._list(prefix):
            batch.append(key)
            if len(batch) == _DELETE_BATCH:
                await self._delete_batch(batch)
                batch = []
        if batch:
            await self._delete_batch(batch)

    async def _delete_batch(self, keys: builtins.list[str]) -> None:
        s3 = await self._s3()
        try:
            response = await s3.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": self._key(key)} for key in keys], "Quiet": True},
            )
        except (ClientError, *_STREAM_ERRORS) as exc:
            self._raise("DeleteObjects", f"{len(keys)} keys from {keys[0]}", exc)
        errors = [e for e in response.get("Errors", []) if e.get("Code") not in _MISSING_CODES]
        if errors:
            first = errors[0]
            raise StorageUnavailable(
                self._scrub(
                    f"s3: DeleteObjects: {len(errors)} keys not deleted, e.g. {first.get('Key')}: "
                    f"{first.get('Code')}: {first.get('Message')}"
                )
            )

    async def move(self, source: str, destination: str) -> None:
        full_source, full_destination = self._key(source), self._key(destination)
        info = await self.stat(source)
        if info is None:
            raise ObjectNotFound(f"s3: {source} not found")
        if source == destination:
            return
        s3 = await self._s3()
        if info.size <= self._copy_threshold:
            try:
                await s3.copy_object(
                    Bucket=self.bucket,
                    Key=full_destination,
                    CopySource={"Bucket": self.bucket, "Key": full_source},
                    **self._create_args,
                )
            except ClientError as exc:
                if _code(exc) in _MISSING_CODES:
                    raise ObjectNotFound(f"s3: {source} not found") from None
                self._raise("CopyObject", f"{source} to {destination}", exc)
            except _STREAM_ERRORS as exc:
                self._raise("CopyObject", f"{source} to {destination}", exc)
        else:
            await self._copy_multipart(s3, full_source, full_destination, destination, info.size)
        await self.delete(source)

    async def _copy_multipart(self, s3: S3Client, source: str, destination: str, key: str, size: int) -> None:
        """UploadPartCopy of ``source`` in ranges, several at once, into a new object at ``destination``."""
        part_size = max(self._copy_chunksize, -(-size // MAX_PARTS))
        ranges = [(start, min(start + part_size, size)) for start in range(0, size, part_size)]
        upload_id = await self._create_upload(s3, destination, key)
        limit = asyncio.Semaphore(self._copy_concurrency)

        async def copy(number: int, start: int, end: int) -> _Uploaded:
            async with limit:
                try:
                    response = await s3.upload_part_copy(
                        Bucket=self.bucket,
                        Key=destination,
                        UploadId=upload_id,
                        PartNumber=number,
                        CopySource={"Bucket": self.bucket, "Key": source},
                        CopySourceRange=f"bytes={start}-{end - 1}",
                    )
                except (ClientError, *_STREAM_ERRORS) as exc:
                    self._raise("UploadPartCopy", key, exc)
                return _Uploaded(number, response["CopyPartResult"]["ETag"].strip('"'), end - start)

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(copy(n, start, end)) for n, (start, end) in enumerate(ranges, start=1)]
            await self._complete(s3, destination, key, upload_id, [task.result() for task in tasks])
        except BaseException as exc:
            await self._abort_quietly(destination, upload_id)
            if isinstance(exc, BaseExceptionGroup):
                raise exc.exceptions[0] from None  # the first failure, not a group, for callers and logs
            raise

    # -- segmented uploads: the token is the S3 UploadId ------------------------------------------------------

    async def start_upload(self, key: str) -> UploadState:
        full = self._key(key)
        s3 = await self._s3()
        return UploadState(key, await self._create_upload(s3, full, key))

    async def write_part(self, upload: UploadState, number: int, offset: int, chunks: AsyncIterable[bytes]) -> Part:
        if number < 1 or offset < 0:
            raise ValueError(f"invalid part {number} at offset {offset}")
        full = self._key(upload.key)
        s3 = await self._s3()
        # New S3 part numbers after every part the upload already has: a rewrite or a racing attempt at the
        # same number never replaces the bytes of an attempt the caller may have recorded.
        first = await self._next_part_number(s3, full, upload)
        parts = await self._upload_stream(s3, full, upload.key, upload.token, aiter(chunks), first, _Received())
        return Part(number, offset, sum(p.size for p in parts), _encode_parts(parts))

    async def complete_upload(self, upload: UploadState, parts: builtins.list[Part], key: str | None = None) -> None:
        full = self._key(upload.key)
        s3 = await self._s3()
        uploaded: builtins.list[_Uploaded] = []
        expected = 0
        for number, part in enumerate(parts, start=1):
            if part.number != number or part.offset != expected:
                raise StorageUnavailable(
                    f"s3: upload of {upload.key}: part {part.number} at offset {part.offset} does not follow the "
                    f"previous parts (expected part {number} at offset {expected})"
                )
            pieces = _decode_parts(part.etag)
            if pieces is None or sum(p.size for p in pieces) != part.size:
                raise StorageUnavailable(f"s3: upload of {upload.key}: part {part.number} was not written by s3")
            if pieces and uploaded and pieces[0].number <= uploaded[-1].number:
                raise StorageUnavailable(
                    f"s3: upload of {upload.key}: part {part.number} was written before part {part.number - 1}; "
                    "S3 assembles parts in the order they were written"
                )
            uploaded += pieces
            expected += part.size
        if not uploaded:
            # S3 cannot complete an upload without parts: an empty object, once the upload is known to exist.
            await self._next_part_number(s3, full, upload)
            await self.put(upload.key, b"")
            await self._abort_quietly(full, upload.token)
        else:
            await self._complete(s3, full, upload.key, upload.token, uploaded)
        if key is not None and key != upload.key:
            # S3 completes an upload only at the key it began with; from there a server-side move.
            await self.move(upload.key, key)

    async def abort_upload(self, upload: UploadState) -> None:
        full = self._key(upload.key)
        s3 = await self._s3()
        try:
            await s3.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload.token)
        except ClientError as exc:
            if _code(exc) not in ("NoSuchUpload", *_MISSING_CODES):
                self._raise("AbortMultipartUpload", upload.key, exc)
        except _STREAM_ERRORS as exc:
            self._raise("AbortMultipartUpload", upload.key, exc)

    async def sweep_staging(self, recorded: Mapping[str, Collection[str]]) -> int:
        return 0  # no local staging: an interrupted part is never completed into an object

    async def open_uploads(self, started_before: float) -> AsyncIterator[UploadState]:
        s3 = await self._s3()
        root = f"{self.root}/" if self.root else ""
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": root}
        while True:
            try:
                page = await s3.list_multipart_uploads(**args)
            except (ClientError, *_STREAM_ERRORS) as exc:
                self._raise("ListMultipartUploads", "/", exc)
            for upload in page.get("Uploads", []):
                if upload["Initiated"].timestamp() < started_before and upload["Key"].startswith(root):
                    yield UploadState(upload["Key"][len(root) :], upload["UploadId"])
            if not page.get("IsTruncated"):
                return
            args["KeyMarker"] = page.get("NextKeyMarker", "")
            args["UploadIdMarker"] = page.get("NextUploadIdMarker", "")

    async def close(self) -> None:
        async with self._lock:
            if self._client_context is not None:
                context, self._client_context, self._client = self._client_context, None, None
                await context.__aexit__(None, None, None)

    # -- helpers -------------------------------------------------------------------------------------------

    async def _s3(self) -> S3Client:
        """The client, created on first use (inside the event loop that uses it)."""
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                context = get_session().create_client("s3", **self._client_args)
                client: S3Client = await context.__aenter__()
                client.meta.events.register("before-call.s3.DeleteObjects", _add_content_md5)
                # First, so it sees every failed attempt before a retry handler answers (it answers nothing).
                client.meta.events.register_first("needs-retry.s3", self._log_retry)
                client.meta.events.register(
                    "needs-retry.s3",
                    self._retry_too_many_requests,  # type: ignore[arg-type]  # botocore uses the return value
                )
                self._client_context, self._client = context, client
            return self._client

    def _log_retry(
        self,
        response: Any = None,
        attempts: int = 1,
        caught_exception: Exception | None = None,
        operation: Any = None,
        **_: Any,
    ) -> None:
        """Log a failed attempt that will be retried at INFO, as the Swift driver does (botocore says it only
        at DEBUG, among everything else it says)."""
        if attempts >= self._max_attempts:
            return
        name = getattr(operation, "name", "request")
        if caught_exception is not None:
            log.info("s3: %s: %s; retrying", name, self._describe(caught_exception))
            return
        status = getattr(response[0], "status_code", 200) if response else 200
        if status == 429 or status >= 500:
            log.info("s3: %s: %s; retrying", name, status)

    def _retry_too_many_requests(self, response: Any = None, attempts: int = 1, **_: Any) -> float | None:
        """Seconds to wait before retrying an HTTP 429, which botocore's standard mode leaves alone unless the
        error code is one it knows (stores behind rate limiters answer 429 with codes of their own)."""
        if response is None or attempts >= self._max_attempts:
            return None
        status = getattr(response[0], "status_code", None)
        return _backoff(attempts) if status == 429 else None

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.root}/{key}" if self.root else key

    def _part_size(self, number: int) -> int:
        return min(MAX_PART, self.chunksize << ((number - 1) // _GROW_EVERY))

    async def _create_upload(self, s3: S3Client, full: str, key: str) -> str:
        # Shielded: a caller cancelled while the request is in flight would never learn the id of an upload
        # the store did create, and could not abort it. Finish asking, abort, then let the cancellation go on.
        request = asyncio.ensure_future(s3.create_multipart_upload(Bucket=self.bucket, Key=full, **self._create_args))
        try:
            response = await asyncio.shield(request)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                orphan = await request
                await self._abort_quietly(full, orphan["UploadId"])
            raise
        except (ClientError, *_STREAM_ERRORS) as exc:
            self._raise("CreateMultipartUpload", key, exc)
        upload_id: str = response["UploadId"]
        return upload_id

    async def _next_part_number(self, s3: S3Client, full: str, upload: UploadState) -> int:
        """One more than the highest part number ``upload`` has; ObjectNotFound when the upload is gone."""
        highest = 0
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": full, "UploadId": upload.token, "MaxParts": 1000}
        while True:
            try:
                page = await s3.list_parts(**args)
            except ClientError as exc:
                if _code(exc) in ("NoSuchUpload", *_MISSING_CODES):
                    raise ObjectNotFound(f"s3: upload {upload.token[:100]} for {upload.key} not found") from None
                self._raise("ListParts", upload.key, exc)
            except _STREAM_ERRORS as exc:
                self._raise("ListParts", upload.key, exc)
            highest = max([highest, *(p["PartNumber"] for p in page.get("Parts", []))])
            marker = page.get("NextPartNumberMarker")
            if not page.get("IsTruncated") or not marker:
                return highest + 1
            args["PartNumberMarker"] = marker

    async def _upload_stream(
        self,
        s3: S3Client,
        full: str,
        key: str,
        upload_id: str,
        stream: AsyncIterator[bytes],
        number: int,
        received: _Received,
    ) -> builtins.list[_Uploaded]:
        """``received`` then the rest of ``stream`` as parts ``number``, ``number + 1``, …

        A part leaves only once at least ``MIN_PART`` more bytes are buffered behind it, so the last part of
        the stream is never a small part followed by another (S3 refuses that at completion). One part
        uploads while the next one is read in: memory stays under about three parts.
        """
        done: builtins.list[_Uploaded] = []
        pending: asyncio.Task[_Uploaded] | None = None
        try:
            while True:
                size = self._part_size(number)
                if received.size >= size + MIN_PART:
                    body = received.take(size)
                    if pending is not None:
                        done.append(await pending)
                    if number > MAX_PARTS:
                        raise StorageUnavailable(f"s3: upload of {key} would need more than {MAX_PARTS} parts")
                    pending = asyncio.create_task(self._upload_part(s3, full, key, upload_id, number, body))
                    number += 1
                    continue
                chunk = await anext(stream, None)
                if chunk is None:
                    break
                received.add(chunk)
            if pending is not None:
                done.append(await pending)
                pending = None
            if received.size:
                if number > MAX_PARTS:
                    raise StorageUnavailable(f"s3: upload of {key} would need more than {MAX_PARTS} parts")
                body = received.take(received.size)
                done.append(await self._upload_part(s3, full, key, upload_id, number, body))
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
        return done

    async def _upload_part(
        self, s3: S3Client, full: str, key: str, upload_id: str, number: int, body: bytes
    ) -> _Uploaded:
        try:
            response = await s3.upload_part(
                Bucket=self.bucket, Key=full, UploadId=upload_id, PartNumber=number, Body=body
            )
        except ClientError as exc:
            if _code(exc) == "NoSuchUpload":
                raise ObjectNotFound(f"s3: upload {upload_id[:100]} for {key} not found") from None
            self._raise("UploadPart", key, exc)
        except _STREAM_ERRORS as exc:
            self._raise("UploadPart", key, exc)
        return _Uploaded(number, response["ETag"].strip('"'), len(body))

    async def _complete(
        self, s3: S3Client, full: str, key: str, upload_id: str, parts: builtins.list[_Uploaded]
    ) -> None:
        try:
            await s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=full,
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": p.number, "ETag": f'"{p.etag}"'} for p in parts]},
            )
        except ClientError as exc:
            if _code(exc) == "NoSuchUpload":
                # A retry after a completion whose response was lost finds the upload gone but the object there.
                info = await self.stat(key)
                if info is not None and info.size == sum(p.size for p in parts):
                    return
                raise ObjectNotFound(f"s3: upload {upload_id[:100]} for {key} not found") from None
            self._raise("CompleteMultipartUpload", key, exc)
        except _STREAM_ERRORS as exc:
            self._raise("CompleteMultipartUpload", key, exc)

    async def _abort_quietly(self, full: str, upload_id: str) -> None:
        """Abort after a failure; shielded so a cancelled write still cleans up, logged if the store refuses."""
        try:
            s3 = await self._s3()
            await asyncio.shield(s3.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id))
        except ClientError as exc:
            if _code(exc) != "NoSuchUpload":
                log.warning("s3: could not abort the multipart upload of %s: %s", full, self._describe(exc))
        except (*_STREAM_ERRORS, asyncio.CancelledError) as exc:
            log.warning("s3: could not abort the multipart upload of %s: %s", full, self._describe(exc))

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            text = f"{error.get('Code', '?')}: {error.get('Message') or 'no message'} (HTTP {status})"
        else:
            text = str(exc) or type(exc).__name__
        return self._scrub(text)

    def _raise(self, operation: str, what: str, exc: BaseException) -> NoReturn:
        # ``from None``: the original exception's text comes through _describe, scrubbed; its chain would not be.
        raise StorageUnavailable(f"s3: {operation} {what}: {self._describe(exc)}") from None

    def _scrub(self, text: str) -> str:
        return redact(text, self._secrets)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _backoff(attempt: int) -> float:
    """Full jitter: up to 0.5 s, 1 s, 2 s … (at most 20 s, as botocore's standard mode) before retry ``attempt``."""
    return random.uniform(0, min(20.0, 0.5 * 2 ** (attempt - 1)))


def _encode_parts(parts: builtins.list[_Uploaded]) -> str:
    """``s3:<number>=<etag>/<size>,…``: what completing needs, kept by the caller (the driver holds nothing)."""
    return _ETAG_PREFIX + ",".join(f"{p.number}={p.etag}/{p.size}" for p in parts)


def _decode_parts(etag: str) -> builtins.list[_Uploaded] | None:
    """The S3 parts an ``_encode_parts`` string names; None if it is not one."""
    if not etag.startswith(_ETAG_PREFIX):
        return None
    body = etag[len(_ETAG_PREFIX) :]
    parts: builtins.list[_Uploaded] = []
    for entry in body.split(",") if body else []:
        head, slash, size = entry.rpartition("/")
        match = _ETAG_ENTRY.fullmatch(head)
        if not slash or match is None or not size.isdigit():
            return None
        number = int(match.group(1))
        if number > MAX_PARTS or (parts and number <= parts[-1].number):
            return None
        parts.append(_Uploaded(number, match.group(2), int(size)))
    return parts


def _add_content_md5(params: dict[str, Any], **_: Any) -> None:
    """DeleteObjects must carry Content-MD5 on Swift's s3api, IBM COS and older Ceph/MinIO (botocore >= 1.36
    sends only a CRC32 header)."""
    body = params["body"]
    data = body if isinstance(body, bytes) else str(body).encode()
    params["headers"]["Content-MD5"] = base64.b64encode(hashlib.md5(data).digest()).decode()

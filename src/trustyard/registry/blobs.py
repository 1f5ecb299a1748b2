"""``/v2/<name>/blobs/<digest>``: GET and HEAD (with Range), DELETE."""

from __future__ import annotations

import os
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from trustyard.errors import BlobUnknown, RangeNotSatisfiable
from trustyard.oci.digest import Digest
from trustyard.registry.http import actor, repository, services
from trustyard.registry.responses import SmallResponse

OCTET_STREAM = "application/octet-stream"
CACHE_FOREVER = b"max-age=31536000"  # a blob is named by its digest: it never changes


class BlobFileResponse(FileResponse):
    # Without pathsend (servers other than Granian), read in large chunks.
    chunk_size = 1024 * 1024

    def __init__(self, path: str, *, ranged: bool, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self.ranged = ranged

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.ranged:  # a Range we ignore (see parse_range): hide it from Starlette, which would answer 400
            scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k != b"range"]}
        await super().__call__(scope, receive, send)


async def get_blob(request: Request) -> Response:
    name, digest = repository(request), Digest.parse(request.path_params["digest"])
    blobs = services(request).blobs
    if request.method == "HEAD":
        # The index alone answers: it never names bytes storage lacks (storage first, index second), and a
        # stat of the file or a HEAD to an object store would cost more than the rest of the request.
        info = await blobs.stat(actor(request), name, digest)
        encoded = str(digest).encode()
        raw = [
            (b"docker-content-digest", encoded),
            (b"etag", b'"%s"' % encoded),
            (b"cache-control", CACHE_FOREVER),
            (b"content-length", str(info.size).encode()),
            (b"accept-ranges", b"bytes"),
            (b"content-type", OCTET_STREAM.encode()),
        ]
        return SmallResponse(b"", raw)
    headers = {
        "Docker-Content-Digest": str(digest),
        "ETag": f'"{digest}"',
        "Cache-Control": CACHE_FOREVER.decode(),
    }
    content = await blobs.open(actor(request), name, digest)
    size = content.info.size
    byte_range = parse_range(request.headers.get("range"), size)
    if content.path is not None:
        try:
            stat = os.stat(content.path)
        except FileNotFoundError:
            raise BlobUnknown(f"blob {digest} was deleted while it was requested") from None
        return BlobFileResponse(
            content.path, ranged=byte_range is not None, headers=headers, media_type=OCTET_STREAM, stat_result=stat
        )
    if content.redirect is not None:
        return RedirectResponse(content.redirect, status_code=307, headers=headers)
    if byte_range is None:
        headers["Content-Length"] = str(size)
        return StreamingResponse(blobs.stream(content), headers=headers, media_type=OCTET_STREAM)
    start, end = byte_range
    headers.update({"Content-Length": str(end - start + 1), "Content-Range": f"bytes {start}-{end}/{size}"})
    stream = blobs.stream(content, start, end - start + 1)
    return StreamingResponse(stream, status_code=206, headers=headers, media_type=OCTET_STREAM)


async def delete_blob(request: Request) -> Response:
    name, digest = repository(request), Digest.parse(request.path_params["digest"])
    await services(request).blobs.delete(actor(request), name, digest)
    return Response(status_code=202, headers={"Docker-Content-Digest": str(digest)})


_BYTE_RANGE = re.compile(r"bytes=(\d*)-(\d*)", re.ASCII | re.IGNORECASE)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """A single ``bytes=START-END`` (or ``START-``, ``-SUFFIX``) range as inclusive offsets into a blob of
    ``size`` bytes. None when there is no Range or one this does not parse (several ranges, another unit,
    garbage): RFC 9110 §14.2 lets a server ignore those and answer 200 with the whole blob. A range that
    parses but selects no byte of the blob raises RangeNotSatisfiable (416, ``Content-Range: bytes */SIZE``).
    """
    match = _BYTE_RANGE.fullmatch(header.replace(" ", "")) if header else None
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise _unsatisfiable(header, size)
        return max(size - suffix, 0), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        raise _unsatisfiable(header, size)
    return start, min(end, size - 1)


def _unsatisfiable(header: str | None, size: int) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(
        f"Range {(header or '')[:100]!r} selects no byte of this blob of {size} bytes", size=size
    )

"""``/v2/<name>/blobs/<digest>``: GET and HEAD (with Range), DELETE."""

from __future__ import annotations

import os
import re

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from trustyard.errors import BlobUnknown, RangeNotSatisfiable
from trustyard.oci.digest import Digest
from trustyard.registry.file_response import BlobFileResponse
from trustyard.registry.http import actor, repository, services
from trustyard.registry.responses import RawHeaders, SmallResponse

OCTET_STREAM = "application/octet-stream"
CACHE_FOREVER = b"max-age=31536000"  # a blob is named by its digest: it never changes


async def get_blob(request: Request) -> Response:
    name, digest = repository(request), Digest.parse(request.path_params["digest"])
    blobs = services(request).blobs
    if request.method == "HEAD":
        # The index alone answers: it never names bytes storage lacks (storage first, index second), and a
        # stat of the file or a HEAD to an object store would cost more than the rest of the request.
        info = await blobs.stat(actor(request), name, digest)
        return SmallResponse(b"", [*_raw_headers(digest), (b"content-length", str(info.size).encode())])
    content = await blobs.open(actor(request), name, digest)
    size = content.info.size
    byte_range = parse_range(request.headers.get("range"), size)
    if content.path is not None:
        return _file_response(content.path, digest, size, byte_range)
    headers = {
        "Docker-Content-Digest": str(digest),
        "ETag": f'"{digest}"',
        "Cache-Control": CACHE_FOREVER.decode(),
    }
    if content.redirect is not None:
        return RedirectResponse(content.redirect, status_code=307, headers=headers)
    if byte_range is None:
        headers["Content-Length"] = str(size)
        return StreamingResponse(blobs.stream(content), headers=headers, media_type=OCTET_STREAM)
    start, end = byte_range
    headers.update({"Content-Length": str(end - start + 1), "Content-Range": f"bytes {start}-{end}/{size}"})
    stream = blobs.stream(content, start, end - start + 1)
    return StreamingResponse(stream, status_code=206, headers=headers, media_type=OCTET_STREAM)


def _file_response(path: str, digest: Digest, size: int, byte_range: tuple[int, int] | None) -> Response:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise BlobUnknown(f"blob {digest} was deleted while it was requested") from None
    headers = _raw_headers(digest)
    if byte_range is None:
        return BlobFileResponse(fd, 0, size, headers)
    start, end = byte_range
    headers.append((b"content-range", f"bytes {start}-{end}/{size}".encode()))
    return BlobFileResponse(fd, start, end - start + 1, headers, status_code=206)


def _raw_headers(digest: Digest) -> RawHeaders:
    """What every blob response says, Content-Length aside."""
    encoded = str(digest).encode()
    return [
        (b"docker-content-digest", encoded),
        (b"etag", b'"%s"' % encoded),
        (b"cache-control", CACHE_FOREVER),
        (b"accept-ranges", b"bytes"),
        (b"content-type", OCTET_STREAM.encode()),
    ]


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

"""``/v2/<name>/blobs/<digest>``: GET and HEAD (with Range), DELETE."""

from __future__ import annotations

import os

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse

from trustyard.errors import BlobUnknown, RangeInvalid
from trustyard.oci.digest import Digest
from trustyard.registry.errors import error_response
from trustyard.registry.http import actor, repository, services

OCTET_STREAM = "application/octet-stream"


class BlobFileResponse(FileResponse):
    # Without pathsend (servers other than Granian), read in large chunks.
    chunk_size = 1024 * 1024


async def get_blob(request: Request) -> Response:
    name, digest = repository(request), Digest.parse(request.path_params["digest"])
    blobs = services(request).blobs
    headers = {
        "Docker-Content-Digest": str(digest),
        "ETag": f'"{digest}"',
        "Cache-Control": "max-age=31536000",
    }
    if request.method == "HEAD":
        # The index alone answers: it never names bytes storage lacks (storage first, index second), and a
        # stat of the file or a HEAD to an object store would cost more than the rest of the request.
        info = await blobs.stat(actor(request), name, digest)
        headers.update({"Content-Length": str(info.size), "Accept-Ranges": "bytes"})
        return Response(status_code=200, headers=headers, media_type=OCTET_STREAM)
    content = await blobs.open(actor(request), name, digest)
    ranged = bool(request.headers.get("range", "").strip())
    if content.path is not None and not ranged:
        try:
            stat = os.stat(content.path)
        except FileNotFoundError:
            raise BlobUnknown(f"blob {digest} was deleted while it was requested") from None
        return BlobFileResponse(content.path, headers=headers, media_type=OCTET_STREAM, stat_result=stat)
    if content.redirect is not None and request.method == "GET":
        return RedirectResponse(content.redirect, status_code=307, headers=headers)
    # Ranged reads stream on every backend alike: one range, refusals in the spec's JSON (Starlette's file
    # response would answer malformed ranges in plain text and several ranges as multipart).
    size = content.info.size
    try:
        byte_range = parse_range(request.headers.get("range"), size)
    except RangeInvalid as exc:  # RFC 9110: a 416 names the size it could not satisfy
        return error_response(request, exc, {"Content-Range": f"bytes */{size}"})
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


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """A single ``bytes=start-end`` (or ``-suffix``, ``start-``) range as inclusive offsets; None for none."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        raise RangeInvalid(f"unsupported Range {header[:100]!r}: send one bytes=START-END range")
    first, sep, last = spec.strip().partition("-")
    try:
        if not sep:
            raise ValueError
        if first == "":
            start, end = max(size - int(last), 0), size - 1
        else:
            start, end = int(first), (int(last) if last else size - 1)
    except ValueError:
        raise RangeInvalid(f"invalid Range {header[:100]!r}") from None
    if start >= size or end < start:
        raise RangeInvalid(f"Range {header[:100]!r} is outside the blob of {size} bytes")
    return start, min(end, size - 1)

"""Small /v2 responses whose headers the handler gives already encoded.

The hot reads (manifest GET and HEAD, blob HEAD, tags list, catalog) answer thousands of times a second;
Starlette's ``Response`` lowercases and encodes a dict of headers on each and scans the result for
Content-Length and Content-Type. These handlers know all their headers, so they build the raw list once.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

RawHeaders = list[tuple[bytes, bytes]]
JSON = b"application/json"


class SmallResponse(Response):
    """A complete body (possibly empty, for HEAD) and the raw headers to send with it, Content-Length and
    Content-Type included: sent as one start and one body message, like any Starlette ``Response``."""

    def __init__(self, body: bytes, headers: RawHeaders, status_code: int = 200) -> None:
        self.status_code = status_code
        self.background = None
        self.body = body
        self.raw_headers = headers


def json_response(content: Any, link: str | None = None) -> SmallResponse:
    """``content`` as Starlette's ``JSONResponse`` renders it (compact, UTF-8), with a Link header if given."""
    body = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", JSON)]
    if link is not None:
        headers.append((b"link", link.encode("latin-1")))
    return SmallResponse(body, headers)

"""The one place domain errors become HTTP: status codes and the spec's ``{"errors": [...]}`` body."""

from __future__ import annotations

import json
import logging

from starlette.requests import Request
from starlette.responses import Response

from trustyard import errors as e
from trustyard.registry.http import token_realm, upload_range

log = logging.getLogger(__name__)

STATUS: dict[type[e.TrustyardError], int] = {
    e.BlobUnknown: 404,
    e.BlobUploadInvalid: 400,
    e.BlobUploadUnknown: 404,
    e.DigestInvalid: 400,
    e.ManifestBlobUnknown: 400,
    e.ManifestInvalid: 400,
    e.ManifestUnknown: 404,
    e.NameInvalid: 400,
    e.NameUnknown: 404,
    e.SizeInvalid: 400,
    e.RangeInvalid: 416,
    e.BlobInUse: 405,
    e.TagInvalid: 400,
    e.PaginationNumberInvalid: 400,
    e.Unauthorized: 401,
    e.InsufficientScope: 401,  # token auth: the client fetches a token with this scope and retries
    e.Denied: 403,
    e.NotFound: 404,
    e.AlreadyExists: 409,
    e.InvalidRequest: 400,
    e.Unsupported: 405,
    e.TooLarge: 413,
    e.TooManyRequests: 429,
    e.StorageUnavailable: 503,
    e.ObjectNotFound: 404,
}


def status_of(error: e.TrustyardError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_response(request: Request, error: e.TrustyardError, headers: dict[str, str] | None = None) -> Response:
    status = status_of(error)
    if status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, error.message)
    entry: dict[str, object] = {"code": error.code, "message": error.message}
    if error.detail is not None:
        entry["detail"] = error.detail
    all_headers = dict(headers or {})
    if isinstance(error, e.Unauthorized | e.InsufficientScope):
        all_headers["WWW-Authenticate"] = challenge(request, error)
    if isinstance(error, e.TooManyRequests) and error.retry_after is not None:
        all_headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, e.UploadOutOfOrder):
        all_headers["Location"] = f"/v2/{error.repository}/blobs/uploads/{error.upload_id}"
        all_headers["Range"] = upload_range(error.size)
        all_headers["Docker-Upload-UUID"] = error.upload_id
    if isinstance(error, e.RangeNotSatisfiable):
        all_headers["Content-Range"] = f"bytes */{error.size}"
    if request.method == "HEAD":
        return Response(status_code=status, headers=all_headers)
    body = json.dumps({"errors": [entry]}).encode()
    return Response(body, status_code=status, media_type="application/json", headers=all_headers)


def challenge(request: Request, error: e.Unauthorized | e.InsufficientScope) -> str:
    """The Docker token challenge; on the token endpoint itself, a Basic one (it takes user and password)."""
    if request.url.path.startswith("/auth/"):
        return 'Basic realm="trustyard"'
    service = request.app.state.services.tokens.service
    parts = [f'Bearer realm="{token_realm(request)}"', f'service="{service}"']
    if error.scope:
        parts.append(f'scope="{error.scope}"')
    if isinstance(error, e.InvalidToken):
        parts.append('error="invalid_token"')
    elif isinstance(error, e.InsufficientScope) or (
        error.scope and request.headers.get("authorization", "")[:7].lower() == "bearer "
    ):
        # A valid token, an anonymous one too, that does not cover ``scope``: invalid_token would send the
        # client (helm, oras) looking for a fault in its token instead of at its login.
        parts.append('error="insufficient_scope"')
    return ",".join(parts)


async def handle(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, e.TrustyardError)
    return error_response(request, exc)

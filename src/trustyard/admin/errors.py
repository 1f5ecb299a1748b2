"""The one place domain errors become admin API responses: ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from trustyard import errors as e

log = logging.getLogger(__name__)

STATUS: dict[type[e.TrustyardError], int] = {
    e.Unauthorized: 401,
    e.Denied: 403,
    e.NotFound: 404,
    e.NameUnknown: 404,
    e.AlreadyExists: 409,
    e.InvalidRequest: 400,
    e.NameInvalid: 400,
    e.TooManyRequests: 429,
    e.StorageUnavailable: 503,
    e.StorageProbeFailed: 422,
    e.SettingPinned: 409,
    e.ConfigInvalid: 400,
}


def status_of(error: e.TrustyardError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


async def handle(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, e.TrustyardError)
    status = status_of(exc)
    if status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc.message)
    headers = {"WWW-Authenticate": 'Basic realm="trustyard admin"'} if status == 401 else {}
    if isinstance(exc, e.TooManyRequests) and exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status_code=status, headers=headers)

"""Helpers every /v2 handler shares: parsed path parameters, the caller, bodies, pagination, headers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlencode

from starlette.requests import Request

from trustyard.errors import PaginationNumberInvalid, TooLarge, Unauthorized
from trustyard.oci.names import RepositoryName
from trustyard.services import Services
from trustyard.services.actor import Actor


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def actor(request: Request) -> Actor:
    """The caller, from its Bearer token alone (no database query); anonymous without one."""
    return services(request).tokens.authenticate(request.headers.get("authorization"), client_address(request))


def authenticated(request: Request) -> Actor:
    """The caller, who must have come with a token (even an anonymous one): ``GET /v2/`` asks for one."""
    if not request.headers.get("authorization"):
        raise Unauthorized("authentication required: log in (docker login) or fetch a token from the realm")
    return actor(request)


def token_realm(request: Request) -> str:
    """Where clients fetch tokens: the configured public URL, else the address this request came to."""
    public: str | None = request.app.state.public_url
    base = public.rstrip("/") if public else f"{request.url.scheme}://{request.url.netloc}"
    return f"{base}/auth/token"


def repository(request: Request) -> RepositoryName:
    return RepositoryName.parse(request.path_params["name"])


def body_stream(request: Request) -> AsyncIterator[bytes]:
    async def chunks() -> AsyncIterator[bytes]:
        async for chunk in request.stream():
            if chunk:
                yield chunk

    return chunks()


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"request body is {declared} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"request body is over the limit of {limit} bytes")
    return bytes(body)


def page_size(request: Request, default: int | None, maximum: int) -> int | None:
    text = request.query_params.get("n")
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdigit()):  # "²".isdigit() is True, and int() refuses it
        raise PaginationNumberInvalid(f"n must be a non-negative integer, not {text[:40]!r}")
    return min(int(text), maximum)


def next_link(request: Request, last: str, n: int) -> str:
    query = urlencode({"n": n, "last": last})
    return f'<{request.url.path}?{query}>; rel="next"'


def upload_range(size: int) -> str:
    """The Range header for an upload of ``size`` bytes, as Distribution and clients expect ("0-0" when empty)."""
    return f"0-{max(size - 1, 0)}"

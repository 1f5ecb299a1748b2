"""Helpers every /v2 handler shares: parsed path parameters, the caller, bodies, pagination, headers."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from trustyard.auth import proxies
from trustyard.errors import PaginationNumberInvalid, TooLarge, Unauthorized
from trustyard.oci.names import RepositoryName
from trustyard.services import Services
from trustyard.services.actor import Actor


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def client_address(request: Request) -> str | None:
    """The client's address: X-Forwarded-For only from a configured trusted proxy (auth/proxies.py)."""
    peer = request.client.host if request.client else None
    if not request.app.state.trusted_proxies:  # nobody's X-Forwarded-For is believed: no address to parse
        return peer
    return proxies.client_address(peer, request.headers.getlist("x-forwarded-for"), request.app.state.trusted_proxies)


Endpoint = Callable[[Request], Awaitable[Response]]
_BASIC_ACTOR = "trustyard.basic_actor"  # where ``identified`` leaves the caller of HTTP Basic credentials


def identified(endpoint: Endpoint) -> Endpoint:
    """A /v2 endpoint that also takes HTTP Basic credentials (``curl -u``, CI scripts, python-dxf, oras-py):
    they are resolved before the endpoint runs, because checking them may need the database (once per cache
    lifetime); ``actor`` then hands the result to the endpoint. Bearer tokens need no such step."""

    @functools.wraps(endpoint)
    async def with_basic(request: Request) -> Response:
        authorization = request.headers.get("authorization")
        if authorization and authorization[:6].lower() == "basic ":
            touched = [request.path_params.get("name"), request.query_params.get("from")]
            request.scope[_BASIC_ACTOR] = await services(request).tokens.authenticate_basic(
                authorization, client_address(request), [name for name in touched if name]
            )
        return await endpoint(request)

    return with_basic


def actor(request: Request) -> Actor:
    """The caller: from its Bearer token alone (no database query), from HTTP Basic credentials as
    ``identified`` resolved them, anonymous without either."""
    basic = request.scope.get(_BASIC_ACTOR)
    if isinstance(basic, Actor):
        return basic
    return services(request).tokens.authenticate(request.headers.get("authorization"), client_address(request))


def authenticated(request: Request) -> Actor:
    """The caller, who must have come with credentials (a token, even an anonymous one, or HTTP Basic):
    ``GET /v2/`` asks for them."""
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

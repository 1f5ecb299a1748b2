"""``Edge``: the one ASGI layer every HTTP request passes through first, whether ``registry/dispatch.py`` hands
it to its /v2 handler directly or to Starlette.

It used to be five middlewares, each wrapping ``send`` (and some ``receive``) in a closure of its own; on a
small request those layers cost as much as the handler. Their effects are the same, in the same order
(outermost first), each still owned by one named piece:

1. metrics and the JSON access log: ``monitoring/requests.RequestMeter`` (status, bytes in and out, latency,
   in flight);
2. ``Docker-Distribution-API-Version`` on every response and, over TLS, ``Strict-Transport-Security``:
   ``response_headers`` below;
3. the request being served, for webhook events: ``services/webhooks.REQUEST_SCOPE``;
4. the storage fence: ``fence_storage`` below (``services/switch.py``);
5. reading an unread request body before an error answers: ``registry/drain.UnreadBody``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from trustyard.monitoring.requests import BYTES_IN, BYTES_OUT, STATUS, RequestMeter, content_length
from trustyard.registry.drain import DRAIN_LIMIT, UnreadBody
from trustyard.services.webhooks import REQUEST_SCOPE

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Strict-Transport-Security on TLS responses: one year, this host only (its subdomains are not ours).
HSTS_MAX_AGE = 365 * 24 * 3600
API_VERSION = (b"docker-distribution-api-version", b"registry/2.0")
HSTS = (b"strict-transport-security", f"max-age={HSTS_MAX_AGE}".encode())
#: Encoded once: what every response gets (plain HTTP, and TLS).
_PLAIN_HEADERS = (API_VERSION,)
_TLS_HEADERS = (API_VERSION, HSTS)
#: Paths that touch neither storage nor the index: no fence before them.
UNFENCED = ("/metrics", "/healthz")


def response_headers(scope: Scope) -> tuple[tuple[bytes, bytes], ...]:
    """The headers every response gets: the API version clients look for, and over TLS, HSTS, which makes
    browsers refuse a later downgrade to plain HTTP. HSTS is left out with --insecure-http, where the
    TLS-terminating proxy in front decides."""
    return _TLS_HEADERS if scope.get("scheme") == "https" else _PLAIN_HEADERS


async def fence_storage(scope: Scope) -> None:
    """Before a request that may touch storage or the index, make sure this worker serves the current storage
    plan: a worker that has not read it within the fence reads it now (services/switch.py; what makes a
    storage switch atomic). Monitoring endpoints touch neither and skip it."""
    if scope["path"].startswith(UNFENCED):
        return
    app = scope.get("app")
    services = getattr(app.state, "services", None) if app is not None else None
    if services is not None:
        await services.switch.fence()


class Edge:
    """Plain ASGI: one ``send`` and one ``receive`` wrapper per request for all five effects."""

    def __init__(self, app: ASGIApp, *, json_access_log: bool, drain_limit: int = DRAIN_LIMIT) -> None:
        self.app = app
        self.meter = RequestMeter(json_access_log=json_access_log)
        self.drain_limit = drain_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = [0, 0, 0]  # see monitoring/requests.py: status, bytes in, bytes out
        started_headers: Any = ()
        added = response_headers(scope)
        unread = UnreadBody.of(scope, self.drain_limit)

        async def counting_receive() -> Message:
            message = await receive()
            state[BYTES_IN] += len(message.get("body", b""))
            return message

        edge_receive = counting_receive
        if unread is not None:  # only a request with a body needs to know whether it was read to its end
            tracked = unread

            async def tracking_receive() -> Message:
                message = await counting_receive()
                tracked.saw(message)
                return message

            edge_receive = tracking_receive

        async def edge_send(message: Message) -> None:
            nonlocal started_headers
            kind = message["type"]
            if kind == "http.response.body":
                state[BYTES_OUT] += len(message.get("body", b""))
            elif kind == "http.response.start":
                if unread is not None and message["status"] >= 400:
                    await unread.before_error(counting_receive)
                started_headers = message["headers"] = [*message.get("headers", ()), *added]
                state[STATUS] = message["status"]
            elif kind == "http.response.pathsend":  # the file's bytes never pass here: its Content-Length
                state[BYTES_OUT] += content_length(started_headers)
            await send(message)

        method = self.meter.method(scope)
        in_flight = self.meter.in_flight(method)
        in_flight.inc()
        token = REQUEST_SCOPE.set(scope)
        try:
            await fence_storage(scope)
            await self.app(scope, edge_receive, edge_send)
        finally:
            REQUEST_SCOPE.reset(token)
            in_flight.dec()
            self.meter.record(scope, method, state, time.perf_counter() - started)

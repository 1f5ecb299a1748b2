"""``RequestMetrics``: the raw ASGI middleware that measures every HTTP request, and writes the JSON access log.

Requests are labelled by route *template* (``/v2/{name:path}/blobs/{digest}``), never by raw path, so a
registry with a million repositories still exports a handful of series; a path no route matched is
``unmatched``. It stays cheap on the hot path: two small closures per request, label children looked up
once per process.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from trustyard import metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UNMATCHED = "unmatched"
#: Methods labelled as themselves; anything else a client invents is "other" (no label explosion).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
access_log = logging.getLogger("trustyard.access")

_requests: dict[tuple[str, str, int], Counter] = {}
_latency: dict[tuple[str, str], Histogram] = {}
_per_route: dict[str, tuple[Counter, Counter]] = {}
_in_flight: dict[str, Gauge] = {}


class RequestMetrics:
    def __init__(self, app: ASGIApp, *, json_access_log: bool) -> None:
        self.app = app
        self.json_access_log = json_access_log
        if json_access_log and not access_log.handlers:
            # One bare JSON object per line on stderr, without the text log's prefix, for log shippers.
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(message)s"))
            access_log.addHandler(handler)
            access_log.setLevel(logging.INFO)
            access_log.propagate = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = [0, 0, 0, 0]  # status, bytes in, bytes out, content-length of a pathsend response

        async def counting_receive() -> Message:
            message = await receive()
            state[1] += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.body":
                state[2] += len(message.get("body", b""))
            elif kind == "http.response.start":
                state[0] = message["status"]
                state[3] = _content_length(message.get("headers", ()))
            elif kind == "http.response.pathsend":
                state[2] += state[3]
            await send(message)

        method = scope["method"] if scope["method"] in METHODS else "other"
        in_flight = _in_flight.get(method)
        if in_flight is None:
            in_flight = _in_flight[method] = metrics.HTTP_IN_FLIGHT.labels(method)
        in_flight.inc()
        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            in_flight.dec()
            self._record(scope, method, state, time.perf_counter() - started)

    def _record(self, scope: Scope, method: str, state: list[int], seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or UNMATCHED
        status = state[0] or 500  # no response started: the server answers 500
        key = (template, method, status)
        counter = _requests.get(key)
        if counter is None:
            counter = _requests[key] = metrics.HTTP_REQUESTS.labels(template, method, str(status))
        counter.inc()
        latency = _latency.get((template, method))
        if latency is None:
            latency = _latency[(template, method)] = metrics.HTTP_LATENCY.labels(template, method)
        latency.observe(seconds)
        bytes_in, bytes_out = _route_meters(template)
        if state[1]:
            bytes_in.inc(state[1])
        if state[2]:
            bytes_out.inc(state[2])
        if self.json_access_log:
            _log(scope, template, status, state, seconds)


def _route_meters(template: str) -> tuple[Counter, Counter]:
    found = _per_route.get(template)
    if found is None:
        found = _per_route[template] = (metrics.HTTP_BYTES_IN.labels(template), metrics.HTTP_BYTES_OUT.labels(template))
    return found


def _content_length(headers: Any) -> int:
    for name, value in headers:
        if name.lower() == b"content-length":
            return int(value)
    return 0


def _log(scope: Scope, template: str, status: int, state: list[int], seconds: float) -> None:
    client = scope.get("client")
    headers = dict(scope.get("headers", ()))
    access_log.info(
        json.dumps(
            {
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "remote": client[0] if client else None,
                "method": scope["method"],
                "path": scope["path"],
                "route": template,
                "status": status,
                "bytes_in": state[1],
                "bytes_out": state[2],
                "duration_ms": round(seconds * 1000, 3),
                "user_agent": headers.get(b"user-agent", b"").decode("latin-1"),
            },
            separators=(",", ":"),
        )
    )

"""``RequestMeter``: what every HTTP request adds to the metrics, and its line of the JSON access log.

The one ASGI layer (``trustyard/edge.py``) measures each request (status, bytes in and out, duration) and
hands the figures here once the response is sent. Requests are labelled by route *template*
(``/v2/{name:path}/blobs/{digest}``), never by raw path, so a registry with a million repositories still
exports a handful of series; a path no route matched is ``unmatched``. It stays cheap on the hot path: label
children are looked up once per process.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import MutableMapping
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from trustyard import metrics

Scope = MutableMapping[str, Any]

UNMATCHED = "unmatched"
#: Methods labelled as themselves; anything else a client invents is "other" (no label explosion).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
access_log = logging.getLogger("trustyard.access")

_requests: dict[tuple[str, str, int], Counter] = {}
_latency: dict[tuple[str, str], Histogram] = {}
_per_route: dict[str, tuple[Counter, Counter]] = {}
_in_flight: dict[str, Gauge] = {}

#: What the edge fills in while a request is served, by index in its ``state`` list.
STATUS, BYTES_IN, BYTES_OUT = 0, 1, 2


class RequestMeter:
    """Per process: the request metrics (``trustyard_http_*``) and, when asked for, the JSON access log."""

    def __init__(self, *, json_access_log: bool) -> None:
        self.json_access_log = json_access_log
        if json_access_log and not access_log.handlers:
            # One bare JSON object per line on stderr, without the text log's prefix, for log shippers.
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(message)s"))
            access_log.addHandler(handler)
            access_log.setLevel(logging.INFO)
            access_log.propagate = False

    @staticmethod
    def method(scope: Scope) -> str:
        """The method as labelled: itself, or "other"."""
        method: str = scope["method"]
        return method if method in METHODS else "other"

    @staticmethod
    def in_flight(method: str) -> Gauge:
        """The in-flight gauge of ``method``: the edge raises it while the request is served."""
        gauge = _in_flight.get(method)
        if gauge is None:
            gauge = _in_flight[method] = metrics.HTTP_IN_FLIGHT.labels(method)
        return gauge

    def record(self, scope: Scope, method: str, state: list[int], seconds: float) -> None:
        """A request answered (or failed): count it under its route template, its latency and its bytes."""
        route = scope.get("route")
        template = getattr(route, "path", None) or UNMATCHED
        status = state[STATUS] or 500  # no response started: the server answers 500
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
        if state[BYTES_IN]:
            bytes_in.inc(state[BYTES_IN])
        if state[BYTES_OUT]:
            bytes_out.inc(state[BYTES_OUT])
        if self.json_access_log:
            _log(scope, template, status, state, seconds)


def _route_meters(template: str) -> tuple[Counter, Counter]:
    found = _per_route.get(template)
    if found is None:
        found = _per_route[template] = (metrics.HTTP_BYTES_IN.labels(template), metrics.HTTP_BYTES_OUT.labels(template))
    return found


def content_length(headers: Any) -> int:
    """The Content-Length of a response's raw headers (0 without one): the size of a ``pathsend`` body."""
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
                "bytes_in": state[BYTES_IN],
                "bytes_out": state[BYTES_OUT],
                "duration_ms": round(seconds * 1000, 3),
                "user_agent": headers.get(b"user-agent", b"").decode("latin-1"),
            },
            separators=(",", ":"),
        )
    )

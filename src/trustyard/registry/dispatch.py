"""Routing /v2 requests without scanning the whole route table.

Starlette matches a request by trying every route's regular expression in order; the /v2 routes come after
the monitoring and token routes, and a miss scans the admin API and the web UI too. Every /v2 path below
``/v2/<name>/`` ends in a known keyword and at most one segment after it (``manifests/<reference>``,
``blobs/<digest>``, ``blobs/uploads/<upload>``, ``tags/list``, ``referrers/<digest>``), and a repository
name may itself contain slashes, so the path is read from its end: its second-to-last segment picks the few
routes that could match, and a suffix comparison decides, as the route's ``^/v2/(?P<name>.*)/...$`` would.

The routes are the same ``Route`` objects as in ``registry/routes.py`` (so metrics keep their templates, and
the handlers their ``identified`` auth), tried in the same order. Anything this does not match by method and
path (a 405, a 404, a trailing-slash redirect, any other prefix) goes to Starlette unchanged.

A matched request does not pass Starlette's two error middlewares either (each wraps ``send`` and looks up
handlers per request): an exception from the handler, or from its response before the first byte is sent,
is answered by the same exception handlers the application gives Starlette, looked up the same way (the
nearest class in the exception's MRO), so a domain error maps to HTTP in one place whichever way a request
came. An exception no handler takes is answered 500 and raised on to the server, which logs it, as with
Starlette's ``ServerErrorMiddleware``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]
INTERNAL_ERROR = PlainTextResponse("Internal Server Error", status_code=500)

V2 = "/v2/"
NAMED = "/v2/{name:path}/"


@dataclass(frozen=True, slots=True)
class Template:
    """One /v2/<name>/... route: the literal tail after the name (``/manifests/``), and the name of the one
    path parameter after it (``reference``), or None when the tail is all literal (``/tags/list``)."""

    route: Route
    literal: str
    parameter: str | None
    methods: frozenset[str]

    def match(self, path: str) -> dict[str, str] | None:
        """The path parameters when ``path`` (which starts with ``/v2/``) matches this route, as Starlette's
        ``^/v2/(?P<name>.*)<literal>(?P<parameter>[^/]+)$`` would."""
        if self.parameter is None:
            end = len(path) - len(self.literal)
            if end < len(V2) or not path.endswith(self.literal):
                return None
            params = {}
        else:
            slash = path.rfind("/")
            end = slash + 1 - len(self.literal)
            if slash + 1 == len(path) or end < len(V2) or not path.startswith(self.literal, end):
                return None
            params = {self.parameter: path[slash + 1 :]}
        name = path[len(V2) : end]
        if "\n" in name:  # the route's ``.*`` stops at a newline: leave the rarity to Starlette
            return None
        params["name"] = name
        return params


class V2Dispatch:
    """ASGI: calls the /v2 handler of a request directly when one matches by path and method, answering its
    exceptions with ``handlers``; else hands the request to ``fallback`` (Starlette's stack)."""

    def __init__(
        self,
        routes: Sequence[BaseRoute],
        fallback: ASGIApp,
        *,
        router: Any,
        handlers: Mapping[type[Exception], ExceptionHandler],
    ) -> None:
        self.fallback = fallback
        self.router = router
        self.handlers = handlers
        self.exact: dict[str, Route] = {}
        self.by_keyword: dict[str, list[Template]] = {}
        for route in routes:
            if not isinstance(route, Route) or not route.path.startswith(V2):
                continue
            if route.path.startswith(NAMED):
                tail = route.path[len(NAMED) - 1 :]
                literal, _, parameter = tail.partition("{")
                template = Template(route, literal, parameter.rstrip("}") or None, frozenset(route.methods or ()))
                self.by_keyword.setdefault(keyword(tail), []).append(template)
            elif "{" not in route.path:
                self.exact.setdefault(route.path, route)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self.find(scope) if scope["type"] == "http" else None
        if found is None:
            await self.fallback(scope, receive, send)
            return
        route, params = found
        scope.setdefault("router", self.router)
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = {**scope.get("path_params", {}), **params}
        request = Request(scope, receive, send)
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            response = await route.endpoint(request)
            await response(scope, receive, sending)
        except Exception as exc:
            if started:  # the status line is out: nothing to answer with; the server closes the connection
                raise
            handler = self.handler_of(exc)
            if handler is None:  # as Starlette's ServerErrorMiddleware: 500, then the server logs the traceback
                await INTERNAL_ERROR(scope, receive, send)
                raise
            await (await handler(request, exc))(scope, receive, send)

    def handler_of(self, exc: Exception) -> ExceptionHandler | None:
        """The handler of the nearest class in the exception's MRO, as Starlette looks it up."""
        for cls in type(exc).__mro__:
            handler = self.handlers.get(cls)
            if handler is not None:
                return handler
        return None

    def find(self, scope: Scope) -> tuple[Route, dict[str, str]] | None:
        path: str = scope["path"]
        if not path.startswith(V2) or scope.get("root_path"):
            return None
        method = scope["method"]
        exact = self.exact.get(path)
        if exact is not None:
            return (exact, {}) if exact.methods is None or method in exact.methods else None
        for template in self.by_keyword.get(keyword(path), ()):
            params = template.match(path)
            if params is not None and method in template.methods:
                return template.route, params
        return None


def keyword(path: str) -> str:
    """The second-to-last segment: ``manifests`` of ``.../manifests/latest``, ``uploads`` of ``.../uploads/``."""
    end = path.rfind("/")
    return path[path.rfind("/", 0, end) + 1 : end]

"""``V2Dispatch``: a /v2 request goes to the route Starlette's own matching would pick, with the same path
parameters, or (when it is not sure) to Starlette; the registry's common requests never need Starlette."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Match, Route

from trustyard.app import create_app
from trustyard.config import Settings
from trustyard.registry.dispatch import V2Dispatch
from trustyard.registry.routes import routes as registry_routes

NAMES = ["a", "lib/alpine", "a/b/c", "", "manifests", "blobs/uploads", "a/tags", "x/blobs", "a\nb"]
TAILS = [
    "",
    "/",
    "/manifests/latest",
    "/manifests/sha256:abc",
    "/manifests/",
    "/manifests",
    "/blobs/sha256:abc",
    "/blobs/uploads",
    "/blobs/uploads/",
    "/blobs/uploads/3f2a",
    "/blobs/uploads/3f2a/",
    "/blobs/",
    "/tags/list",
    "/tags/list/",
    "/tags/lists",
    "/referrers/sha256:abc",
    "/referrers/",
    "/manifests/latest/tags/list",
    "/blobs/uploads/blobs/x",
]
METHODS = ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"]
EXTRA = ["/v2/", "/v2", "/v2/_catalog", "/v2/_catalog/", "/v2//manifests/x", "/v2/manifests/x", "/v2/tags/list"]


def starlette_choice(routes: list[Any], path: str, method: str) -> tuple[Any, dict[str, Any]] | None:
    scope = {"type": "http", "path": path, "method": method, "root_path": ""}
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            return route, child["path_params"]
    return None


@pytest.fixture(scope="module")
def all_routes(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    data: Path = tmp_path_factory.mktemp("data")
    return list(create_app(Settings(data_dir=data)).routes)


async def fallback(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("not used")


def direct() -> V2Dispatch:
    return V2Dispatch(registry_routes, fallback, router=None, handlers={})


def test_the_same_route_and_parameters_as_starlette(all_routes: list[Any]) -> None:
    dispatch = direct()
    paths = [f"/v2/{name}{tail}" for name, tail in itertools.product(NAMES, TAILS)] + EXTRA
    fast = 0
    for path, method in itertools.product(paths, METHODS):
        found = dispatch.find({"type": "http", "path": path, "method": method, "root_path": ""})
        if found is None:
            continue  # Starlette decides: 404, 405, a redirect
        fast += 1
        assert found == starlette_choice(all_routes, path, method), (path, method)
    assert fast > 100  # most requests skip Starlette's scan


@pytest.mark.parametrize(
    ("path", "method", "template", "params"),
    [
        ("/v2/lib/alpine/manifests/latest", "GET", "/v2/{name:path}/manifests/{reference}", {"reference": "latest"}),
        ("/v2/lib/alpine/manifests/latest", "HEAD", "/v2/{name:path}/manifests/{reference}", {"reference": "latest"}),
        ("/v2/lib/alpine/blobs/sha256:ab", "HEAD", "/v2/{name:path}/blobs/{digest}", {"digest": "sha256:ab"}),
        ("/v2/lib/alpine/blobs/uploads/", "POST", "/v2/{name:path}/blobs/uploads/", {}),
        ("/v2/lib/alpine/blobs/uploads/u1", "PATCH", "/v2/{name:path}/blobs/uploads/{upload}", {"upload": "u1"}),
        ("/v2/lib/alpine/tags/list", "GET", "/v2/{name:path}/tags/list", {}),
        ("/v2/lib/alpine/referrers/sha256:ab", "GET", "/v2/{name:path}/referrers/{digest}", {"digest": "sha256:ab"}),
        ("/v2/_catalog", "GET", "/v2/_catalog", {}),
        ("/v2/", "GET", "/v2/", {}),
    ],
)
def test_the_common_requests_are_dispatched_directly(
    path: str, method: str, template: str, params: dict[str, str]
) -> None:
    found = direct().find({"type": "http", "path": path, "method": method})
    assert found is not None
    route, got = found
    assert route.path == template
    expected = {"name": "lib/alpine", **params} if "{name" in template else {}
    assert got == expected


def test_a_wrong_method_or_another_prefix_goes_to_starlette() -> None:
    dispatch = direct()
    for path, method in [
        ("/v2/a/tags/list", "POST"),  # 405 with Allow: Starlette's
        ("/v2/a/manifests/latest", "OPTIONS"),
        ("/v2/a/unknown/x", "GET"),
        ("/api/v1/me", "GET"),
        ("/v2", "GET"),
    ]:
        assert dispatch.find({"type": "http", "path": path, "method": method}) is None, (path, method)


class Refused(Exception):
    """A domain-like error with a handler."""


class Subrefused(Refused):
    """Handled by its parent's handler, as Starlette would."""


async def refused(request: Request, exc: Exception) -> Response:
    return PlainTextResponse(f"refused: {exc}", status_code=418)


async def call(endpoint: Any, sent: list[dict[str, Any]] | None = None) -> tuple[list[dict[str, Any]], Any]:
    route = Route("/v2/{name:path}/tags/list", endpoint, methods=["GET"])
    dispatch = V2Dispatch([route], fallback, router=None, handlers={Refused: refused})
    sent = [] if sent is None else sent

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/v2/a/tags/list", "headers": [], "query_string": b""}
    await dispatch(scope, receive, send)
    return sent, scope


async def test_a_handled_error_is_answered_by_its_handler_looked_up_by_class() -> None:
    async def endpoint(request: Request) -> Response:
        raise Subrefused("no")

    sent, scope = await call(endpoint)
    assert sent[0]["status"] == 418
    assert sent[1]["body"] == b"refused: no"
    assert scope["route"].path == "/v2/{name:path}/tags/list"  # metrics still see the template


async def test_an_error_raised_by_the_response_before_it_starts_is_answered_too() -> None:
    class Failing(Response):
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            raise Refused("while opening the body")

    async def endpoint(request: Request) -> Response:
        return Failing()

    sent, _ = await call(endpoint)
    assert [m.get("status") for m in sent[:1]] == [418]


async def test_an_error_after_the_response_started_reaches_the_server() -> None:
    class Breaking(Response):
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            raise Refused("mid-body")

    async def endpoint(request: Request) -> Response:
        return Breaking()

    with pytest.raises(Refused):
        await call(endpoint)


async def test_an_unexpected_error_is_answered_500_and_raised_on_to_the_server() -> None:
    async def endpoint(request: Request) -> Response:
        raise KeyError("bug")

    sent: list[dict[str, Any]] = []
    with pytest.raises(KeyError):
        await call(endpoint, sent)
    assert sent[0]["status"] == 500
    assert sent[1]["body"] == b"Internal Server Error"

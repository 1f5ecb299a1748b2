"""The one composition root: builds the storage driver, the SQL index and ``Services`` from ``Settings``,
and mounts the edges into one ASGI application.

``trustyard serve`` runs ``worker_app`` in each Granian worker process; settings reach the workers as JSON
in ``TRUSTYARD_WORKER_SETTINGS`` so every worker runs exactly what the parent resolved.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from trustyard import errors
from trustyard.config import Settings
from trustyard.db.engine import migrate, open_index
from trustyard.registry import errors as registry_errors
from trustyard.registry.routes import routes as registry_routes
from trustyard.services import Services
from trustyard.storage.factory import build_driver

WORKER_SETTINGS_ENV = "TRUSTYARD_WORKER_SETTINGS"
log = logging.getLogger("trustyard")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


async def prepare(settings: Settings) -> None:
    """One-time start-up work done once per node before workers start: data dir and schema."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await migrate(settings.database)


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    index = open_index(settings.database)
    driver = build_driver(settings.storage, settings.default_storage_root)
    try:
        yield Services.create(index, driver)
    finally:
        await driver.close()
        await index.dispose()


def create_app(settings: Settings, *, migrate_first: bool = False) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if migrate_first:
            await prepare(settings)
        async with open_services(settings) as services:
            app.state.services = services
            yield

    return Starlette(
        routes=registry_routes,
        lifespan=lifespan,
        middleware=[Middleware(ApiVersionHeader)],
        exception_handlers={errors.TrustyardError: registry_errors.handle, HTTPException: _http_error},
    )


def worker_app() -> Starlette:
    """Granian's factory target in each worker process."""
    settings = Settings.model_validate_json(os.environ[WORKER_SETTINGS_ENV])
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return create_app(settings)


class ApiVersionHeader:
    """Add ``Docker-Distribution-API-Version`` to every response (plain ASGI: cheaper than BaseHTTPMiddleware)."""

    header = (b"docker-distribution-api-version", b"registry/2.0")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(
        self, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), self.header]
            await send(message)

        await self.app(scope, receive, send_with_header)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})  # keeps Allow on 405
    if exc.status_code == 405:
        error: errors.TrustyardError = errors.Unsupported(f"{request.method} is not supported on {request.url.path}")
    elif exc.status_code == 404:
        error = errors.NameUnknown(f"no such endpoint: {request.url.path}")
    else:
        return Response(str(exc.detail), status_code=exc.status_code, headers=headers)
    return registry_errors.error_response(request, error, headers)

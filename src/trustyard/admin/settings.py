"""``/api/v1/settings/storage``: show, test and save the storage backend (Distribution's storage block as JSON
or YAML; secrets write-only); ``/adoption``: how far indexing what the backend holds got (or start it again);
``/migration``: migrate to another backend, its progress, and cancelling it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from trustyard.admin.http import actor, render, services, yaml_body
from trustyard.errors import NotFound
from trustyard.storage.config import StorageSettings, parse_storage_block


async def get_storage(request: Request) -> Response:
    view = await services(request).settings.storage(await actor(request))
    return render(view.as_document())


async def test_storage(request: Request) -> Response:
    caller, candidate = await actor(request), await storage_body(request)
    await services(request).settings.test_storage(caller, candidate)
    return render({"ok": True, "driver": candidate.driver})


async def put_storage(request: Request) -> Response:
    caller, candidate = await actor(request), await storage_body(request)
    view = await services(request).settings.save_storage(caller, candidate)
    return render(view.as_document())


async def start_migration(request: Request) -> Response:
    """The same body as PUT: probe the target, switch to it reading through to the current backend, copy in the
    background; 202 with the migration's progress."""
    caller, candidate = await actor(request), await storage_body(request)
    status = await services(request).migrations.begin(caller, candidate)
    return render(status.document(), status=202)


async def cancel_migration(request: Request) -> Response:
    """Cancel the migration under way: back to the backend it copies from, with what was pushed meanwhile
    copied back, in the background; 202 with its progress (``cancelling``, then ``cancelled``)."""
    status = await services(request).migrations.cancel_in_background(await actor(request))
    return render(status.document(), status=202)


async def get_migration(request: Request) -> Response:
    """The latest migration's progress: objects, bytes, rate, ETA, state and, once done, its report."""
    status = await services(request).migrations.status(await actor(request))
    if status is None:
        raise NotFound("no storage migration has been started: POST a storage block to start one")
    return render(status.document())


async def get_adoption(request: Request) -> Response:
    view = await services(request).adoption.status(await actor(request))
    return render(view.as_document())


async def post_adoption(request: Request) -> Response:
    view = await services(request).adoption.restart(await actor(request))
    return render(view.as_document(), status=202)


async def storage_body(request: Request) -> StorageSettings:
    """The request body as storage settings: ``{"s3": {...}}`` (optionally wrapped in ``{"storage": ...}``),
    as JSON or, with a YAML content type, a Distribution ``config.yml`` storage block."""
    document = await yaml_body(request, "a storage block")
    return parse_storage_block(document)

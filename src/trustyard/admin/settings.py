"""``/api/v1/settings/storage``: show, test and save the storage backend (Distribution's storage block as JSON
or YAML; secrets write-only)."""

from __future__ import annotations

import yaml
from starlette.requests import Request
from starlette.responses import Response

from trustyard.admin.http import BODY_LIMIT, actor, render, require_account, services
from trustyard.errors import InvalidRequest
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


async def storage_body(request: Request) -> StorageSettings:
    """The request body as storage settings: ``{"s3": {...}}`` (optionally wrapped in ``{"storage": ...}``),
    as JSON or, with a YAML content type, a Distribution ``config.yml`` storage block."""
    await require_account(request)
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > BODY_LIMIT:
            raise InvalidRequest(f"request body over {BODY_LIMIT} bytes")
    try:
        document = yaml.safe_load(raw or b"{}")  # JSON is YAML, so one parser reads both
    except yaml.YAMLError as exc:
        raise InvalidRequest(f"the body is neither JSON nor YAML: {exc}") from None
    except RecursionError:  # PyYAML recurses per nesting level; a storage block is three levels deep
        raise InvalidRequest("the body nests too deeply to be a storage block") from None
    return parse_storage_block(document)

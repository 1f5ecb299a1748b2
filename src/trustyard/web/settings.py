"""Settings > Storage: choose Filesystem or Cloud (Amazon S3 or OpenStack Swift), or upload a Distribution
``storage:`` block; Test probes the backend without saving, Save probes it and switches every worker, Migrate
probes it and copies every image there while serving (its progress panel refreshes itself).

On failure the page shows the backend's own error and keeps what was typed, except secrets (write-only: their
inputs are always empty and say whether a value is set). Settings pinned by the config file or the
environment show read-only with their source.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response

from trustyard.errors import ConfigInvalid, TrustyardError
from trustyard.services.actor import Actor
from trustyard.services.settings import StorageView
from trustyard.storage.config import StorageSettings, parse_storage_block
from trustyard.web.errors import message_of, status_of
from trustyard.web.http import flash, redirect, render, services
from trustyard.web.sessions import actor, form, text

#: Form fields of each driver: (parameter, kind); kinds: text, secret, bool, int. Field names are driver_param.
FIELDS: dict[str, list[tuple[str, str]]] = {
    "filesystem": [("rootdirectory", "text")],
    "s3": [
        ("rootdirectory", "text"),
        ("region", "text"),
        ("bucket", "text"),
        ("accesskey", "text"),
        ("secretkey", "secret"),
        ("regionendpoint", "text"),
        ("forcepathstyle", "bool"),
        ("secure", "bool"),
        ("skipverify", "bool"),
        ("redirect", "bool"),
    ],
    "swift": [
        ("authurl", "text"),
        ("username", "text"),
        ("password", "secret"),
        ("container", "text"),
        ("authversion", "int"),
        ("tenant", "text"),
        ("domain", "text"),
        ("prefix", "text"),
        ("secretkey", "secret"),
        ("redirect", "bool"),
    ],
}
DEFAULTS: dict[str, Any] = {"s3_region": "us-east-1", "s3_secure": True, "s3_redirect": True, "swift_redirect": True}
STORAGE_URL = "/settings/storage"


def _values_of_view(view: StorageView) -> dict[str, Any]:
    """What the form shows for the backend in use; the other drivers' fields show their defaults."""
    values = {**DEFAULTS, "type": "cloud" if view.driver in ("s3", "swift") else "filesystem"}
    values["provider"] = view.driver if view.driver == "swift" else "s3"
    kinds = dict(FIELDS.get(view.driver, []))
    for name, value in view.parameters.items():
        if name in kinds:
            values[f"{view.driver}_{name}"] = "" if value is None else value
    return values


def _values_of_form(data: FormData) -> dict[str, Any]:
    """What was typed, to show again after a failure: every field but the secrets."""
    values: dict[str, Any] = {"type": text(data, "type"), "provider": text(data, "provider")}
    for driver, fields in FIELDS.items():
        for name, kind in fields:
            key = f"{driver}_{name}"
            if kind == "bool":
                values[key] = data.get(key) == "on"
            elif kind != "secret":
                values[key] = text(data, key)
    return values


def _candidate(data: FormData, current: StorageView) -> StorageSettings:
    """The storage block the form describes. Parameters the form does not show (chunk size, ...) are kept from
    the backend in use when the driver stays the same; an empty secret keeps the saved one (the service)."""
    driver = text(data, "provider") if text(data, "type") == "cloud" else "filesystem"
    if driver not in FIELDS:
        raise ConfigInvalid("choose Amazon S3 or OpenStack Swift")
    block: dict[str, Any] = dict(current.parameters) if current.driver == driver else {}
    for name, kind in FIELDS[driver]:
        key = f"{driver}_{name}"
        if kind == "bool":
            block[name] = data.get(key) == "on"
        elif value := text(data, key):
            block[name] = int(value) if kind == "int" and value.isascii() and value.isdigit() else value
        else:
            block.pop(name, None)
    return parse_storage_block({driver: block})


async def _page(
    request: Request, caller: Actor, view: StorageView, values: dict[str, Any], result: Any = None, status: int = 200
) -> Response:
    secrets = {f"{view.driver}_{name}": present for name, present in view.secrets.items()}
    migration = await services(request).migrations.status(caller)
    adoption = (await services(request).adoption.status(caller)).as_document()
    return render(
        request,
        "storage.html",
        caller,
        status,
        section="settings",
        view=view,
        v=values,
        secrets=secrets,
        result=result,
        migration=migration.document() if migration else None,
        adoption=adoption,
    )


async def migration_panel(request: Request) -> Response:
    """The migration's progress panel alone (the page's script fetches it every two seconds while it runs)."""
    caller = await actor(request)
    migration = await services(request).migrations.status(caller)
    document = migration.document() if migration else None
    return render(request, "storage_migration.html", caller, migration=document)


async def cancel_migration(request: Request) -> Response:
    """The migration panel's Cancel: back to the old backend, what was pushed meanwhile copied back there."""
    await form(request)
    caller = await actor(request)
    try:
        status = await services(request).migrations.cancel_in_background(caller)
    except TrustyardError as error:
        flash(request, "error", message_of(error))
        return redirect(request, STORAGE_URL + "#migration")
    flash(
        request,
        "ok",
        f"Cancelling migration {status.migration.id}: every worker goes back to the old backend, and what was pushed "
        "during the migration is copied back there (progress below).",
    )
    return redirect(request, STORAGE_URL + "#migration")


async def storage_page(request: Request) -> Response:
    caller = await actor(request)
    view = await services(request).settings.storage(caller)
    return await _page(request, caller, view, _values_of_view(view))


async def _apply(request: Request, caller: Actor, op: str, candidate: StorageSettings) -> str | None:
    """Test ``candidate`` (returns what to say) or save it (returns None, with a flash message to show)."""
    settings = services(request).settings
    if op == "test":
        await settings.test_storage(caller, candidate)
        return f"Test passed: wrote, read back and deleted a probe object in {candidate.describe()}. Nothing was saved."
    if op == "migrate":
        await services(request).migrations.begin(caller, candidate)
        flash(
            request,
            "ok",
            f"Migration started: new pushes go to {candidate.describe()} now, and every image is being copied there "
            "while the registry keeps serving (progress below).",
        )
        return None
    await settings.save_storage(caller, candidate)
    flash(
        request,
        "ok",
        f"Saved. Every worker now stores images in {candidate.describe()}; the images it already holds are "
        "indexed in the background (progress below).",
    )
    return None


async def save_storage(request: Request) -> Response:
    """Test or Save the form; on failure the page says why and keeps what was typed (but not the secrets)."""
    data = await form(request)
    caller = await actor(request)
    view = await services(request).settings.storage(caller)
    values = _values_of_form(data)
    try:
        passed = await _apply(request, caller, text(data, "op"), _candidate(data, view))
    except TrustyardError as error:
        return await _page(request, caller, view, values, ("error", message_of(error)), status_of(error))
    if passed is None:
        return redirect(request, STORAGE_URL)
    return await _page(request, caller, view, values, ("ok", passed))


async def upload_storage(request: Request) -> Response:
    """Test or Save a Distribution ``storage:`` block, uploaded as a file or pasted."""
    data = await form(request)
    caller = await actor(request)
    view = await services(request).settings.storage(caller)
    try:
        passed = await _apply(request, caller, text(data, "op"), await _yaml_block(data))
    except TrustyardError as error:
        return await _page(request, caller, view, _values_of_view(view), ("error", message_of(error)), status_of(error))
    if passed is None:
        return redirect(request, STORAGE_URL)
    return await _page(request, caller, view, _values_of_view(view), ("ok", passed))


async def _yaml_block(data: FormData) -> StorageSettings:
    upload = data.get("file")
    raw: bytes | str = text(data, "yaml")
    if isinstance(upload, UploadFile) and upload.filename:
        raw = await upload.read()
    if not raw:
        raise ConfigInvalid("choose a YAML file or paste a storage: block")
    import yaml  # on the first upload, as in admin/http.py

    try:
        document = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigInvalid(f"the file is not YAML: {exc}") from None
    return parse_storage_block(document)

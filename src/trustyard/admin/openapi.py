"""The OpenAPI 3.1 document of the admin API, built from the route table and the schemas below."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from trustyard import __version__
from trustyard.services.webhook_settings import EndpointSettings
from trustyard.storage.config import StorageSettings

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # Starlette syntax: {name}, {name:path}, {name:int}
    handler: Handler
    summary: str
    body: str | None = None  # a schema name below
    response: str | None = None


def _object(required: Sequence[str] = (), **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": list(required), "properties": properties}


STRING, BOOLEAN, INTEGER = {"type": "string"}, {"type": "boolean"}, {"type": "integer"}
TIME = {"type": "string", "format": "date-time"}
NUMBER = {"type": "number"}
ROLE = {"type": "string", "enum": ["read", "read-write", "admin"]}


def _list(key: str, item: str) -> dict[str, Any]:
    return _object([key], **{key: {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}}})


SCHEMAS: dict[str, dict[str, Any]] = {
    "User": _object(["name", "admin", "active"], name=STRING, admin=BOOLEAN, active=BOOLEAN, created_at=TIME),
    "Users": _list("users", "User"),
    "NewUser": _object(["name"], name=STRING, password={**STRING, "minLength": 12}, admin=BOOLEAN),
    "CreatedUser": _object(
        ["name", "admin", "active"],
        name=STRING,
        admin=BOOLEAN,
        active=BOOLEAN,
        created_at=TIME,
        password={**STRING, "description": "the generated password, only when none was given; shown once"},
    ),
    "UserFlags": _object(admin=BOOLEAN, active=BOOLEAN),
    "Password": _object(
        password={**STRING, "minLength": 12, "description": "the new password; leave out to generate one"},
        current_password={**STRING, "description": "required when changing your own password"},
    ),
    "Named": _object(["name"], name=STRING),
    "NamedToken": _object(["name"], name=STRING, read_only={**BOOLEAN, "description": "may only pull"}),
    "Token": _object(
        ["id", "user", "name"],
        id=STRING,
        user=STRING,
        name=STRING,
        read_only=BOOLEAN,
        created_at=TIME,
        last_used_at=TIME,
    ),
    "Tokens": _list("tokens", "Token"),
    "NewToken": _object(
        ["id", "token"], id=STRING, name=STRING, user=STRING, read_only=BOOLEAN, token=STRING, created_at=TIME
    ),
    "ReservedName": _object(
        ["name", "kind"],
        name=STRING,
        kind={"type": "string", "enum": ["user", "organization"]},
        reserved_at=TIME,
        reserved_by=STRING,
    ),
    "ReservedNames": _list("reserved", "ReservedName"),
    "Grant": _object(
        ["id", "target", "role"], id=INTEGER, target=STRING, role=ROLE, user=STRING, team=STRING, created_at=TIME
    ),
    "Grants": _list("grants", "Grant"),
    "NewGrant": _object(
        ["target", "role"],
        target={**STRING, "description": "a repository (team/app) or a namespace (team/*)"},
        role=ROLE,
        user=STRING,
        team={**STRING, "description": "organization/team"},
    ),
    "Visibility": _object(["public"], public=BOOLEAN),
    "AuditEvent": _object(
        ["id", "at", "actor", "action", "target"],
        id=INTEGER,
        at=TIME,
        actor=STRING,
        source=STRING,
        action=STRING,
        target=STRING,
        detail={"type": "object"},
    ),
    "AuditEvents": _list("events", "AuditEvent"),
    "GcOptions": _object(
        dry_run=BOOLEAN,
        untagged={**BOOLEAN, "description": "also manifests no tag points at"},
        grace={**STRING, "description": "keep what was pushed within this window: 90s, 30m, 2h, 7d (default 2h)"},
    ),
    "GcRun": _object(
        ["id", "status"],
        id=INTEGER,
        status={**STRING, "enum": ["running", "succeeded", "failed", "interrupted"]},
        started_at=TIME,
        finished_at=TIME,
        started_by=STRING,
        dry_run=BOOLEAN,
        untagged=BOOLEAN,
        grace_seconds=INTEGER,
        report={"type": "object", "description": "blobs, manifests, links, uploads, orphans, bytes_freed, seconds"},
        error=STRING,
    ),
    "GcRuns": _list("runs", "GcRun"),
    "StorageMigration": _object(
        ["id", "state", "objects", "bytes"],
        id=INTEGER,
        state={**STRING, "enum": ["copying", "switching", "cancelling", "done", "failed", "cancelled"]},
        phase={**STRING, "enum": ["blobs", "links", "recent", "done"]},
        source={**INTEGER, "description": "the backend generation copied from (left intact)"},
        target={**INTEGER, "description": "the backend generation copied to (active from the start)"},
        running={**BOOLEAN, "description": "a copier holds the migration's lease now"},
        objects=_object(["done", "total"], done=INTEGER, total=INTEGER),
        bytes=_object(["done", "total"], done=INTEGER, total=INTEGER),
        verified={**INTEGER, "description": "objects checked by digest (blobs) or read back (links)"},
        failed={**INTEGER, "description": "objects missing from the source or not matching their digest"},
        rate_bytes_per_second={"type": "number"},
        rate_objects_per_second={"type": "number"},
        eta_seconds={"type": "number", "nullable": True},
        started_by=STRING,
        started_at=TIME,
        updated_at=TIME,
        finished_at=TIME,
        error={**STRING, "description": "the last error; the copy resumes from its cursor"},
        report={"type": "object", "description": "copied, already there, links written/removed, missing, mismatched"},
    ),
    "Policy": _object(
        ["pattern"],
        pattern={**STRING, "description": "team/app, team/* (one level), team/** (any depth), ** (all)"},
        immutable={**BOOLEAN, "description": "tags never move and are never deleted"},
        keep_last={**INTEGER, "description": "retention: keep the newest N tags"},
        keep_days={**INTEGER, "description": "retention: keep tags pushed within D days"},
        keep_tags={**STRING, "description": "retention: keep tags matching this glob (v*)"},
        updated_at=TIME,
        updated_by=STRING,
    ),
    "Policies": _list("policies", "Policy"),
    "RetentionPlan": _object(
        ["expired"],
        expired={
            "type": "array",
            "items": _object(["repository", "tag"], repository=STRING, tag=STRING, pushed_at=TIME),
        },
    ),
    "GcSchedule": _object(
        ["every"],
        every={**STRING, "description": "24h, 7d (at least 5m), or off"},
        untagged=BOOLEAN,
        grace={**STRING, "description": "90s, 30m, 2h, 7d (default 2h)"},
        source={**STRING, "enum": ["config", "runtime"], "readOnly": True},
    ),
    "Adoption": _object(
        ["state"],
        state={**STRING, "enum": ["none", "running", "done", "failed", "superseded"]},
        generation={**INTEGER, "description": "the storage backend being indexed (0: the startup storage)"},
        repositories=INTEGER,
        manifests=INTEGER,
        tags=INTEGER,
        blobs=INTEGER,
        objects_listed=INTEGER,
        skipped=INTEGER,
        started_at=TIME,
        updated_at=TIME,
        finished_at=TIME,
        seconds=NUMBER,
        holder={**STRING, "description": "the worker indexing now"},
        error=STRING,
    ),
    "GcStatus": _object(["running"], running=BOOLEAN, holder=STRING, last_run={"$ref": "#/components/schemas/GcRun"}),
    "Info": _object(
        ["version", "urls", "storage", "database", "counts", "nodes", "gc"],
        version=STRING,
        urls=_object(
            ["listen", "registry", "metrics", "web"],
            listen=STRING,
            public_url=STRING,
            registry=STRING,
            ca={**STRING, "description": "absent (null) without a CA of the registry's own"},
            metrics=STRING,
            web=STRING,
        ),
        tls={
            **_object(
                certificate=STRING,
                names={"type": "array", "items": STRING},
                not_after=TIME,
                ca=STRING,
                ca_fingerprint={**STRING, "description": "SHA-256, AB:CD:… as openssl prints it"},
            ),
            "description": "null when serving plain HTTP behind a TLS-terminating proxy",
        },
        storage={"type": "object", "description": "as GET /settings/storage: secrets only as set / not set"},
        database=_object(
            ["url", "dialect"],
            url={**STRING, "description": "the password shown as ***"},
            dialect=STRING,
            revision={**STRING, "description": "the Alembic migration the schema is at"},
        ),
        counts=_object(
            ["repositories", "tags", "manifests", "blobs", "bytes"],
            repositories=INTEGER,
            tags=INTEGER,
            manifests=INTEGER,
            blobs=INTEGER,
            bytes={**INTEGER, "description": "the size of every blob stored, each once"},
        ),
        nodes={
            "type": "array",
            "items": _object(
                ["name"],
                name=STRING,
                listen=STRING,
                this=BOOLEAN,
                workers=INTEGER,
                versions={"type": "array", "items": STRING},
                last_seen=TIME,
            ),
        },
        nodes_note=STRING,
        gc=_object(["running"], running=BOOLEAN, last_run={"type": "object"}),
    ),
    "Error": _object(["error"], error=_object(["code", "message"], code=STRING, message=STRING)),
}


def _storage_schemas() -> dict[str, dict[str, Any]]:
    """Distribution's storage block, from the pydantic models that parse it (one source for both)."""
    schema = StorageSettings.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions: dict[str, dict[str, Any]] = schema.pop("$defs", {})
    return {**definitions, "StorageSettings": schema}


SCHEMAS.update(_storage_schemas())


def _webhook_schemas() -> dict[str, dict[str, Any]]:
    """Distribution's notification endpoint, from the pydantic model that parses it."""
    schema = EndpointSettings.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions: dict[str, dict[str, Any]] = schema.pop("$defs", {})
    attempt = _object(["at"], at=TIME, status_code=INTEGER, error=STRING, duration_ms=INTEGER)
    delivery = _object(
        ["id", "event_id", "action", "state"],
        id=INTEGER,
        event_id=STRING,
        action={"type": "string", "enum": ["push", "pull", "delete", "mount"]},
        repository=STRING,
        target={"type": "object"},
        state={"type": "string", "enum": ["pending", "delivered"]},
        created_at=TIME,
        next_attempt_at=TIME,
        delivered_at=TIME,
        attempts={"type": "array", "items": attempt},
    )
    view = _object(
        ["name", "url"],
        name=STRING,
        url=STRING,
        disabled=BOOLEAN,
        headers={"type": "array", "items": STRING, "description": "header names; values are write-only"},
        secret={"type": "string", "enum": ["set", "not set"]},
        timeout=STRING,
        threshold=INTEGER,
        backoff=STRING,
        ignoredmediatypes={"type": "array", "items": STRING},
        ignore={"type": "object"},
        source={"type": "string", "enum": ["runtime", "config file"]},
        pinned=BOOLEAN,
        updated_by=STRING,
        updated_at=TIME,
    )
    return {
        **definitions,
        "WebhookEndpoint": schema,
        "WebhookView": view,
        "WebhookEndpoints": _list("endpoints", "WebhookView"),
        "WebhookDelivery": delivery,
        "WebhookDeliveries": _list("deliveries", "WebhookDelivery"),
    }


SCHEMAS.update(_webhook_schemas())

_PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")


def document(endpoints: Sequence[Endpoint], prefix: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        path = prefix + _PARAM.sub(r"{\1}", endpoint.path)
        params = [
            {"name": name, "in": "path", "required": True, "schema": INTEGER if kind == "int" else STRING}
            for name, kind in _PARAM.findall(endpoint.path)
        ]
        operation: dict[str, Any] = {
            "summary": endpoint.summary,
            "operationId": endpoint.handler.__name__,
            "parameters": params,
            "responses": _responses(endpoint),
        }
        if endpoint.body:
            schema = {"$ref": f"#/components/schemas/{endpoint.body}"}
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
        paths.setdefault(path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "trustyard admin API", "version": __version__},
        "security": [{"basic": []}],
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "basic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "user name and password, or an app token as the password",
                }
            },
        },
        "paths": paths,
    }


def _responses(endpoint: Endpoint) -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    ok = "201" if endpoint.method == "POST" else "204" if endpoint.method == "DELETE" else "200"
    success: dict[str, Any] = {"description": "success"}
    if endpoint.response:
        schema = {"$ref": f"#/components/schemas/{endpoint.response}"}
        success["content"] = {"application/json": {"schema": schema}}
    return {
        ok: success,
        "400": {"description": "invalid request", **error},
        "401": {"description": "no or wrong credentials", **error},
        "403": {"description": "not allowed", **error},
        "404": {"description": "not found", **error},
    }

"""Webhooks: CNCF Distribution's notifications for push, pull, delete and mount, from a durable queue in SQL.

``emit`` is called by the blob, upload and manifest services right after their index write; it writes one
delivery row per interested endpoint (nothing at all when no endpoint is configured, so pulls stay cheap).
Every worker runs ``run``: it claims endpoints with due deliveries through a lease in SQL (db/webhooks.py)
and posts their events in order, one envelope per event::

    POST <url>
    Content-Type: application/vnd.docker.distribution.events.v1+json
    X-Trustyard-Signature: sha256=<hex HMAC-SHA256 of the body with the endpoint's secret>

    {"events": [{"id", "timestamp", "action", "target", "request", "actor", "source"}]}

A 2xx answer delivers the event; anything else is logged as an attempt and retried after ``backoff``, then,
after ``threshold`` failures in a row, with exponential backoff (at most ``MAX_BACKOFF``). Later events of
the same endpoint wait behind a failing one, so a receiver sees its events in order once it recovers.
Endpoints from the config file's ``notifications:`` block are synced at start and read-only elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr, ValidationError

from trustyard import metrics
from trustyard.auth.secretbox import SecretBox
from trustyard.db.webhooks import (
    DELIVERED,
    DeliveryRow,
    EndpointRow,
    NewDelivery,
    NewEndpoint,
    Outcome,
    WebhookStore,
)
from trustyard.errors import ConfigInvalid, NotFound, SettingPinned
from trustyard.services.actor import Actor
from trustyard.services.audit import Audit
from trustyard.services.webhook_settings import EndpointSettings, Ignore, NotificationsSettings

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("trustyard.webhooks")

MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json"
SIGNATURE_HEADER = "X-Trustyard-Signature"
CONFIG_FILE, RUNTIME = "config file", "runtime"
#: How often each worker looks for due deliveries when nothing woke it.
POLL_SECONDS = 1.0
MAX_BACKOFF = timedelta(minutes=10)
LEASE = timedelta(seconds=30)
#: Deliveries one lease holder sends before letting others look (keeps one busy endpoint from starving others).
BATCH = 50

#: The ASGI scope of the request being served (set by the edge, trustyard/edge.py): the event's ``request`` section.
REQUEST_SCOPE: ContextVar[MutableMapping[str, Any] | None] = ContextVar("trustyard_request_scope", default=None)


@dataclass(frozen=True, slots=True)
class EventSource:
    """The ``source`` of every event this process sends: the node's address and this process's instance id."""

    addr: str
    instance_id: str
    public_url: str | None  # the base of target URLs; else the request's own scheme and host

    @classmethod
    def local(cls, listen: str, public_url: str | None) -> EventSource:
        port = listen.rpartition(":")[2]
        return cls(f"{socket.gethostname()}:{port}", str(uuid.uuid4()), public_url)


@dataclass(frozen=True, slots=True)
class Target:
    """What an event is about; ``kind`` is ``blobs`` or ``manifests`` (it builds the target URL)."""

    kind: str
    repository: str
    digest: str | None
    media_type: str | None = None
    size: int | None = None
    tag: str | None = None
    from_repository: str | None = None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A stored endpoint with its secrets opened: what delivery needs."""

    id: int
    settings: EndpointSettings
    source: str


@dataclass(frozen=True, slots=True)
class EndpointView:
    name: str
    url: str
    enabled: bool
    headers: list[str]  # names only: values may be credentials
    secret: bool
    timeout: float
    threshold: int
    backoff: float
    ignored_media_types: list[str]
    ignored_actions: list[str]
    source: str
    pinned: bool
    updated_by: str
    updated_at: datetime

    def as_document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "disabled": not self.enabled,
            "headers": self.headers,
            "secret": "set" if self.secret else "not set",
            "timeout": f"{self.timeout:g}s",
            "threshold": self.threshold,
            "backoff": f"{self.backoff:g}s",
            "ignoredmediatypes": self.ignored_media_types,
            "ignore": {"actions": self.ignored_actions},
            "source": self.source,
            "pinned": self.pinned,
            "updated_by": self.updated_by,
            "updated_at": _aware(self.updated_at).isoformat(),
        }


@dataclass(frozen=True, slots=True)
class AttemptView:
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int

    def as_document(self) -> dict[str, Any]:
        return {
            "at": _aware(self.at).isoformat(),
            "status_code": self.status_code,
            "error": self.error,
            "duration_ms": self.duration_ms,
        }


@dataclass(frozen=True, slots=True)
class DeliveryView:
    id: int
    event_id: str
    action: str
    repository: str
    target: dict[str, Any]
    state: str
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    attempts: list[AttemptView] = field(default_factory=list)

    def as_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event_id": self.event_id,
            "action": self.action,
            "repository": self.repository,
            "target": self.target,
            "state": self.state,
            "created_at": _aware(self.created_at).isoformat(),
            "next_attempt_at": _aware(self.next_attempt_at).isoformat() if self.next_attempt_at else None,
            "delivered_at": _aware(self.delivered_at).isoformat() if self.delivered_at else None,
            "attempts": [a.as_document() for a in self.attempts],
        }


class Webhooks:
    def __init__(self, store: WebhookStore, box: SecretBox, audit: Audit, source: EventSource) -> None:
        self._store = store
        self._box = box
        self._audit = audit
        self._source = source
        self._active: list[Endpoint] = []  # enabled endpoints, reloaded by refresh()
        self._wake = asyncio.Event()
        self._node_prefix = f"{source.addr}/"
        self._owner = f"{self._node_prefix}{os.getpid()}/{source.instance_id[:8]}"
        self._client: httpx.AsyncClient | None = None

    # Managing endpoints (site administrators) ------------------------------------------------------------

    async def endpoints(self, actor: Actor) -> list[EndpointView]:
        actor.require_admin()
        return [self._view(row) for row in await self._store.endpoints()]

    async def endpoint(self, actor: Actor, name: str) -> EndpointView:
        actor.require_admin()
        return self._view(await self._row(name))

    async def save(self, actor: Actor, settings: EndpointSettings) -> EndpointView:
        """Create or replace an endpoint; a secret left out keeps the saved one, as storage secrets do."""
        actor.require_admin()
        existing = await self._store.endpoint(settings.name)
        if existing is not None and existing.source == CONFIG_FILE:
            raise SettingPinned(f"webhook endpoint {settings.name} is set in the config file; change it there")
        if settings.secret is None and existing is not None:
            kept = self._open(existing).settings.secret
            settings = settings.model_copy(update={"secret": kept})
        await self._store.put_endpoint(self._new(settings, RUNTIME), actor.name, datetime.now(UTC))
        await self._audit.record(actor, "webhook.save", settings.name, url=settings.url)
        await self.refresh()
        return self._view(await self._row(settings.name))

    async def remove(self, actor: Actor, name: str) -> None:
        """Delete an endpoint and its queue."""
        actor.require_admin()
        row = await self._row(name)
        if row.source == CONFIG_FILE:
            raise SettingPinned(f"webhook endpoint {name} is set in the config file; remove it there")
        await self._store.delete_endpoint(name)
        await self._audit.record(actor, "webhook.delete", name)
        await self.refresh()

    async def deliveries(self, actor: Actor, name: str, limit: int = 50) -> list[DeliveryView]:
        """The endpoint's newest deliveries, newest first, each with every attempt."""
        actor.require_admin()
        row = await self._row(name)
        deliveries = await self._store.deliveries(row.id, max(1, min(limit, 500)))
        attempts: dict[int, list[AttemptView]] = {}
        for a in await self._store.attempts([d.id for d in deliveries]):
            attempts.setdefault(a.delivery_id, []).append(AttemptView(a.at, a.status_code, a.error, a.duration_ms))
        return [_delivery_view(d, attempts.get(d.id, [])) for d in deliveries]

    async def sync_config(self, notifications: NotificationsSettings) -> None:
        """Make the config file's endpoints the stored ones of source "config file" (at start, once per node)."""
        now = datetime.now(UTC)
        for settings in notifications.endpoints:
            await self._store.put_endpoint(self._new(settings, CONFIG_FILE), "config file", now)
        configured = {e.name for e in notifications.endpoints}
        for name in await self._store.names_from(CONFIG_FILE):
            if name not in configured:
                await self._store.delete_endpoint(name)

    async def refresh(self) -> None:
        """Reload the enabled endpoints (every worker, every few seconds: changes on other nodes show up)."""
        active = []
        for row in await self._store.endpoints():
            if not row.enabled:
                continue
            try:
                active.append(self._open(row))
            except (ConfigInvalid, ValidationError):
                log.exception("webhook endpoint %s cannot be loaded; it is skipped", row.name)
        self._active = active

    async def prune(self, actor: Actor, older_than: timedelta) -> int:
        """Drop delivered events older than ``older_than`` from the log (pending ones stay until delivered)."""
        actor.require_system()
        return await self._store.prune(datetime.now(UTC) - older_than)

    # Events -----------------------------------------------------------------------------------------------

    async def emit(self, actor: Actor, action: str, target: Target) -> None:
        """Queue ``action`` on ``target`` for every endpoint that wants it. Never fails the caller's request:
        the registry operation already happened; a queue failure is logged."""
        endpoints = [e for e in self._active if not e.settings.ignores(action, target.media_type)]
        if not endpoints:
            return
        try:
            event = self._event(actor, action, target)
            payload = json.dumps(event, separators=(",", ":"))
            rows = [NewDelivery(e.id, event["id"], action, target.repository, payload) for e in endpoints]
            await self._store.enqueue(rows, datetime.now(UTC))
        except Exception:
            log.exception("could not queue the %s event of %s for webhooks", action, target.repository)
            return
        self._wake.set()

    def _event(self, actor: Actor, action: str, target: Target) -> dict[str, Any]:
        scope = REQUEST_SCOPE.get()
        headers = dict(scope.get("headers", ())) if scope else {}
        host = headers.get(b"host", b"").decode("latin-1")
        base = self._source.public_url or (f"{scope.get('scheme', 'https')}://{host}" if scope else "")
        described: dict[str, Any] = {"mediaType": target.media_type, "size": target.size, "digest": target.digest}
        described["length"] = target.size
        described["repository"] = target.repository
        if target.digest:
            described["url"] = f"{base.rstrip('/')}/v2/{target.repository}/{target.kind}/{target.digest}"
        described["tag"] = target.tag
        described["fromRepository"] = target.from_repository
        client = scope.get("client") if scope else None
        return {
            "id": str(uuid.uuid4()),
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "action": action,
            "target": {k: v for k, v in described.items() if v is not None},
            "request": {
                "id": str(uuid.uuid4()),
                "addr": f"{client[0]}:{client[1]}" if client else "",
                "host": host,
                "method": scope.get("method", "") if scope else "",
                "useragent": headers.get(b"user-agent", b"").decode("latin-1"),
            },
            "actor": {"name": "" if actor.is_anonymous else actor.name},
            "source": {"addr": self._source.addr, "instanceID": self._source.instance_id},
        }

    # Delivery ---------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Per worker, forever: deliver what is due, then wait for a local event or the next poll."""
        while True:
            try:
                await self.deliver_due()
            except Exception:  # a database hiccup must not end the loop
                log.exception("webhook delivery failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            self._wake.clear()

    async def deliver_due(self) -> int:
        """Deliver every due event of every endpoint whose lease this worker gets; the number delivered."""
        endpoints = {e.id: e for e in self._active}
        delivered = 0
        for endpoint_id in await self._store.due_endpoints(datetime.now(UTC)):
            endpoint = endpoints.get(endpoint_id)
            if endpoint is None:
                continue  # created elsewhere a moment ago: the next refresh brings it
            now = datetime.now(UTC)
            try:
                if await self._store.claim(endpoint_id, self._owner, now, now + self._lease(endpoint)):
                    delivered += await self._deliver_endpoint(endpoint)
            finally:
                # Also when cancelled inside claim(): its UPDATE may have committed all the same. Releasing
                # a lease held by someone else does nothing.
                await self._store.release(endpoint_id, self._owner)
        return delivered

    async def recover(self) -> None:
        """Free the leases this node's earlier processes held (a crash or kill -9 leaves them until they run
        out); run at start, before any worker of this node delivers."""
        await self._store.release_owned(self._node_prefix)

    async def _deliver_endpoint(self, endpoint: Endpoint) -> int:
        delivered = 0
        for row in await self._store.head(endpoint.id, BATCH):
            now = datetime.now(UTC)
            if _aware(row.next_attempt_at) > now:
                break  # the oldest waits for its retry; later events wait behind it, in order
            if not await self._store.claim(endpoint.id, self._owner, now, now + self._lease(endpoint)):
                break  # our lease ran out and another worker took over
            outcome = await self._attempt(endpoint, row)
            await self._store.record(outcome)
            if outcome.next_attempt_at is not None:
                break
            delivered += 1
        return delivered

    async def _attempt(self, endpoint: Endpoint, row: DeliveryRow) -> Outcome:
        import httpx  # only where webhooks are delivered: httpx loads rich and pygments (~9 MiB per worker)

        settings = endpoint.settings
        body = b'{"events":[' + row.payload.encode() + b"]}"
        headers = {name: ", ".join(values) for name, values in settings.headers.items()}
        headers["Content-Type"] = MEDIA_TYPE
        if settings.secret is not None:
            key = settings.secret.get_secret_value().encode()
            headers[SIGNATURE_HEADER] = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            response = await self._http().post(settings.url, content=body, headers=headers, timeout=settings.timeout)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}: {response.text[:200]}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
        at = datetime.now(UTC)
        elapsed = int((time.perf_counter() - started) * 1000)
        metrics.WEBHOOK_DELIVERIES.labels(settings.name, "failed" if error else "delivered").inc()
        if error is None:
            return Outcome(row.id, at, status, None, elapsed, None)
        log.warning("webhook %s: delivering event %s failed: %s", settings.name, row.event_id, error)
        failures = row.attempts + 1
        delay = timedelta(seconds=settings.backoff) * 2 ** max(0, failures - settings.threshold)
        return Outcome(row.id, at, status, error, elapsed, at + min(delay, MAX_BACKOFF))

    def _http(self) -> httpx.AsyncClient:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False, headers={"User-Agent": "trustyard-webhooks"})
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    @staticmethod
    def _lease(endpoint: Endpoint) -> timedelta:
        return LEASE + timedelta(seconds=endpoint.settings.timeout)

    # Rows and views ---------------------------------------------------------------------------------------

    async def _row(self, name: str) -> EndpointRow:
        row = await self._store.endpoint(name)
        if row is None:
            raise NotFound(f"no webhook endpoint named {name!r}")
        return row

    def _new(self, settings: EndpointSettings, source: str) -> NewEndpoint:
        secrets = {
            "headers": settings.headers,
            "secret": settings.secret.get_secret_value() if settings.secret else None,
        }
        plain = settings.model_dump(
            mode="json", include={"timeout", "threshold", "backoff", "ignoredmediatypes", "ignore"}
        )
        return NewEndpoint(
            settings.name, settings.url, not settings.disabled, plain, self._box.seal(json.dumps(secrets)), source
        )

    def _open(self, row: EndpointRow) -> Endpoint:
        secrets = json.loads(self._box.open(row.sealed)) if row.sealed else {}
        secret = secrets.get("secret")
        settings = EndpointSettings.model_validate(
            {
                **row.settings,
                "name": row.name,
                "url": row.url,
                "disabled": not row.enabled,
                "headers": secrets.get("headers", {}),
                "secret": SecretStr(secret) if secret else None,
            }
        )
        return Endpoint(row.id, settings, row.source)

    def _view(self, row: EndpointRow) -> EndpointView:
        ignore = Ignore.model_validate(row.settings.get("ignore", {}))
        try:
            opened = self._open(row).settings
            headers, secret = sorted(opened.headers), opened.secret is not None
        except ConfigInvalid:  # sealed with another key: show what can be shown
            headers, secret = [], True
        return EndpointView(
            row.name,
            row.url,
            row.enabled,
            headers,
            secret,
            float(str(row.settings.get("timeout", 5.0))),
            int(str(row.settings.get("threshold", 3))),
            float(str(row.settings.get("backoff", 1.0))),
            [str(m) for m in _list(row.settings.get("ignoredmediatypes"))] + ignore.mediatypes,
            ignore.actions,
            row.source,
            row.source == CONFIG_FILE,
            row.updated_by,
            row.updated_at,
        )


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []


def _delivery_view(row: DeliveryRow, attempts: list[AttemptView]) -> DeliveryView:
    target = json.loads(row.payload).get("target", {})
    waiting = None if row.state == DELIVERED else row.next_attempt_at
    return DeliveryView(
        row.id,
        row.event_id,
        row.action,
        row.repository,
        target,
        row.state,
        row.created_at,
        waiting,
        row.delivered_at,
        attempts,
    )


def _aware(moment: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

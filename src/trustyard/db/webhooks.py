"""``WebhookStore``: webhook endpoints, the durable delivery queue and its attempt log (migration 0006).

One ``webhook_deliveries`` row per event and endpoint, written when the event happens; a row stays
``pending`` until its endpoint answers 2xx. Deliveries of one endpoint go out in ``id`` order by whoever holds
the endpoint's lease (``lease_owner`` / ``lease_until`` on the endpoint row, taken with one conditional
UPDATE), so several workers and nodes deliver each event once, and a worker that dies gives the endpoint up
when its lease runs out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from trustyard.db import tables as t

ID = BigInteger().with_variant(Integer, "sqlite")

webhook_endpoints = Table(
    "webhook_endpoints",
    t.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("url", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("settings", Text, nullable=False),  # JSON: timeout, threshold, backoff, ignore lists
    Column("sealed", Text),  # headers and secret, JSON sealed by auth.secretbox
    Column("source", String(16), nullable=False),  # "config file" (read-only elsewhere) or "runtime"
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(64), nullable=False),
    Column("lease_owner", String(64)),
    Column("lease_until", DateTime(timezone=True)),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    t.metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("endpoint_id", Integer, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("action", String(16), nullable=False),
    Column("repository", String(256), nullable=False),
    Column("payload", Text, nullable=False),  # the event (JSON), sent inside the envelope
    Column("state", String(16), nullable=False),  # pending, delivered
    Column("attempts", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    Index("ix_webhook_deliveries_endpoint_id_state_id", "endpoint_id", "state", "id"),
    Index("ix_webhook_deliveries_state_next_attempt_at", "state", "next_attempt_at"),
)

webhook_attempts = Table(
    "webhook_attempts",
    t.metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("delivery_id", ID, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("status_code", Integer),  # None: no HTTP answer (refused, timed out)
    Column("error", Text),
    Column("duration_ms", Integer, nullable=False),
)

PENDING, DELIVERED = "pending", "delivered"


@dataclass(frozen=True, slots=True)
class EndpointRow:
    id: int
    name: str
    url: str
    enabled: bool
    settings: dict[str, object]
    sealed: str | None
    source: str
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True, slots=True)
class NewEndpoint:
    name: str
    url: str
    enabled: bool
    settings: dict[str, object]
    sealed: str | None
    source: str


@dataclass(frozen=True, slots=True)
class NewDelivery:
    endpoint_id: int
    event_id: str
    action: str
    repository: str
    payload: str


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: int
    endpoint_id: int
    event_id: str
    action: str
    repository: str
    payload: str
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class AttemptRow:
    delivery_id: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt did: ``next_attempt_at`` None means delivered."""

    delivery_id: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int
    next_attempt_at: datetime | None


_E = webhook_endpoints.c
_D = webhook_deliveries.c


class WebhookStore:
    def __init__(self, reader: AsyncEngine, writer: AsyncEngine) -> None:
        self._reader = reader
        self._writer = writer

    # Endpoints -------------------------------------------------------------------------------------------

    async def endpoints(self) -> list[EndpointRow]:
        query = select(*_ENDPOINT_COLUMNS).order_by(_E.name)
        async with self._reader.connect() as conn:
            return [_endpoint(row) for row in await conn.execute(query)]

    async def endpoint(self, name: str) -> EndpointRow | None:
        async with self._reader.connect() as conn:
            row = (await conn.execute(select(*_ENDPOINT_COLUMNS).where(_E.name == name))).first()
        return None if row is None else _endpoint(row)

    async def put_endpoint(self, endpoint: NewEndpoint, by: str, now: datetime) -> None:
        """Create or replace the endpoint named ``endpoint.name`` (its queue stays)."""
        values = {
            "url": endpoint.url,
            "enabled": endpoint.enabled,
            "settings": json.dumps(endpoint.settings),
            "sealed": endpoint.sealed,
            "source": endpoint.source,
            "updated_at": now,
            "updated_by": by,
        }
        async with self._writer.begin() as conn:
            found = await conn.scalar(select(_E.id).where(_E.name == endpoint.name))
            if found is None:
                await conn.execute(webhook_endpoints.insert().values(name=endpoint.name, **values))
            else:
                await conn.execute(update(webhook_endpoints).where(_E.id == found).values(**values))

    async def delete_endpoint(self, name: str) -> bool:
        async with self._writer.begin() as conn:
            found = await conn.scalar(select(_E.id).where(_E.name == name))
            if found is None:
                return False
            # Explicit: SQLite enforces ON DELETE CASCADE only with foreign keys on, and being explicit is cheap.
            deliveries = select(_D.id).where(_D.endpoint_id == found)
            await conn.execute(delete(webhook_attempts).where(webhook_attempts.c.delivery_id.in_(deliveries)))
            await conn.execute(delete(webhook_deliveries).where(_D.endpoint_id == found))
            await conn.execute(delete(webhook_endpoints).where(_E.id == found))
            return True

    async def names_from(self, source: str) -> list[str]:
        async with self._reader.connect() as conn:
            return list(await conn.scalars(select(_E.name).where(_E.source == source)))

    # The queue -------------------------------------------------------------------------------------------

    async def enqueue(self, deliveries: Sequence[NewDelivery], now: datetime) -> None:
        rows = [
            {
                "endpoint_id": d.endpoint_id,
                "event_id": d.event_id,
                "action": d.action,
                "repository": d.repository,
                "payload": d.payload,
                "state": PENDING,
                "attempts": 0,
                "created_at": now,
                "next_attempt_at": now,
            }
            for d in deliveries
        ]
        async with self._writer.begin() as conn:
            await conn.execute(webhook_deliveries.insert(), rows)

    async def due_endpoints(self, now: datetime) -> list[int]:
        """Endpoints whose oldest pending delivery is due and whose lease is free."""
        oldest = (
            select(_D.endpoint_id, func.min(_D.next_attempt_at).label("due"))
            .where(_D.state == PENDING)
            .group_by(_D.endpoint_id)
            .subquery()
        )
        query = (
            select(_E.id)
            .join(oldest, oldest.c.endpoint_id == _E.id)
            .where(_E.enabled.is_(True), oldest.c.due <= now, or_(_E.lease_until.is_(None), _E.lease_until < now))
        )
        async with self._reader.connect() as conn:
            return list(await conn.scalars(query))

    async def claim(self, endpoint_id: int, owner: str, now: datetime, until: datetime) -> bool:
        """Take (or extend) the endpoint's lease; False when another owner holds it."""
        free = or_(_E.lease_until.is_(None), _E.lease_until < now, _E.lease_owner == owner)
        statement = (
            update(webhook_endpoints)
            .where(and_(_E.id == endpoint_id, free))
            .values(lease_owner=owner, lease_until=until)
        )
        async with self._writer.begin() as conn:
            return (await conn.execute(statement)).rowcount == 1

    async def release(self, endpoint_id: int, owner: str) -> None:
        statement = (
            update(webhook_endpoints)
            .where(and_(_E.id == endpoint_id, _E.lease_owner == owner))
            .values(lease_owner=None, lease_until=None)
        )
        async with self._writer.begin() as conn:
            await conn.execute(statement)

    async def release_owned(self, prefix: str) -> None:
        """Free every lease whose owner starts with ``prefix`` (one node's processes)."""
        statement = (
            update(webhook_endpoints)
            .where(_E.lease_owner.startswith(prefix, autoescape=True))
            .values(lease_owner=None, lease_until=None)
        )
        async with self._writer.begin() as conn:
            await conn.execute(statement)

    async def head(self, endpoint_id: int, limit: int) -> list[DeliveryRow]:
        """The endpoint's oldest pending deliveries, in order."""
        query = (
            select(*_DELIVERY_COLUMNS)
            .where(_D.endpoint_id == endpoint_id, _D.state == PENDING)
            .order_by(_D.id)
            .limit(limit)
        )
        async with self._reader.connect() as conn:
            return [_delivery(row) for row in await conn.execute(query)]

    async def record(self, outcome: Outcome) -> None:
        """Log one attempt and move its delivery on: delivered, or pending until ``next_attempt_at``."""
        values: dict[str, object] = {"attempts": _D.attempts + 1}
        if outcome.next_attempt_at is None:
            values.update(state=DELIVERED, delivered_at=outcome.at)
        else:
            values.update(next_attempt_at=outcome.next_attempt_at)
        async with self._writer.begin() as conn:
            await conn.execute(
                webhook_attempts.insert().values(
                    delivery_id=outcome.delivery_id,
                    at=outcome.at,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    duration_ms=outcome.duration_ms,
                )
            )
            await conn.execute(update(webhook_deliveries).where(_D.id == outcome.delivery_id).values(**values))

    async def prune(self, delivered_before: datetime) -> int:
        """Forget deliveries delivered before ``delivered_before`` (and their attempts); how many."""
        old = select(_D.id).where(_D.state == DELIVERED, _D.delivered_at < delivered_before)
        async with self._writer.begin() as conn:
            await conn.execute(delete(webhook_attempts).where(webhook_attempts.c.delivery_id.in_(old)))
            return (await conn.execute(delete(webhook_deliveries).where(_D.id.in_(old)))).rowcount

    # The delivery log ------------------------------------------------------------------------------------

    async def deliveries(self, endpoint_id: int, limit: int) -> list[DeliveryRow]:
        """The newest deliveries of an endpoint, newest first."""
        query = select(*_DELIVERY_COLUMNS).where(_D.endpoint_id == endpoint_id).order_by(_D.id.desc()).limit(limit)
        async with self._reader.connect() as conn:
            return [_delivery(row) for row in await conn.execute(query)]

    async def attempts(self, delivery_ids: Sequence[int]) -> list[AttemptRow]:
        c = webhook_attempts.c
        query = (
            select(c.delivery_id, c.at, c.status_code, c.error, c.duration_ms)
            .where(c.delivery_id.in_(list(delivery_ids)))
            .order_by(c.id)
        )
        async with self._reader.connect() as conn:
            return [
                AttemptRow(r.delivery_id, r.at, r.status_code, r.error, r.duration_ms)
                for r in await conn.execute(query)
            ]


_ENDPOINT_COLUMNS = (
    _E.id,
    _E.name,
    _E.url,
    _E.enabled,
    _E.settings,
    _E.sealed,
    _E.source,
    _E.updated_at,
    _E.updated_by,
)
_DELIVERY_COLUMNS = (
    _D.id,
    _D.endpoint_id,
    _D.event_id,
    _D.action,
    _D.repository,
    _D.payload,
    _D.state,
    _D.attempts,
    _D.created_at,
    _D.next_attempt_at,
    _D.delivered_at,
)


def _endpoint(row: Any) -> EndpointRow:
    settings = json.loads(row.settings)
    return EndpointRow(
        row.id, row.name, row.url, bool(row.enabled), settings, row.sealed, row.source, row.updated_at, row.updated_by
    )


def _delivery(row: Any) -> DeliveryRow:
    return DeliveryRow(*row)

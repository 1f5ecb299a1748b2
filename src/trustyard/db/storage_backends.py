"""``StorageBackendStore``: storage backends by generation (``storage_backends``) and the storage *plan*.

A backend is the sealed settings an operator saved, under a generation that only grows; generation 0 is the
storage the process started with (config file, environment or the default root) and is never stored. The
plan is the ``runtime_settings`` row "storage": ``{"active": g, "fallback": g_or_null}``, its row generation
the plan *version* every worker acks (db/workers.py). Reads of a plan with a fallback fall back to that
backend (an online migration); new writes go to the active one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from trustyard.db import tables as t
from trustyard.db.database import Database, now

#: The ``runtime_settings`` row holding the plan.
PLAN = "storage"


@dataclass(frozen=True, slots=True)
class StoragePlan:
    active: int  # the backend generation new writes go to (0: the startup storage)
    fallback: int | None  # the backend reads fall back to while a migration copies; None otherwise
    version: int = 0  # grows on every change of the plan (0: never stored)

    def document(self) -> str:
        return json.dumps({"active": self.active, "fallback": self.fallback})


@dataclass(frozen=True, slots=True)
class StorageBackendRow:
    generation: int
    settings: str  # sealed JSON
    saved_at: datetime
    saved_by: str


class StorageBackendStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, settings: str, saved_by: str) -> int:
        """Store a backend's sealed settings under a new generation (above every earlier one); returns it."""
        async with self._db.writer.begin() as conn:
            top = await conn.scalar(select(func.max(t.storage_backends.c.generation)))
            plan = await conn.scalar(select(t.runtime_settings.c.generation).where(t.runtime_settings.c.name == PLAN))
            generation = max(int(top or 0), int(plan or 0)) + 1
            await conn.execute(
                t.storage_backends.insert().values(
                    generation=generation, settings=settings, saved_at=now(), saved_by=saved_by
                )
            )
            return generation

    async def get(self, generation: int) -> StorageBackendRow | None:
        row = await self._db.first(select(t.storage_backends).where(t.storage_backends.c.generation == generation))
        return None if row is None else StorageBackendRow(row.generation, row.settings, row.saved_at, row.saved_by)

    async def plan(self) -> StoragePlan:
        """The plan in force: ``StoragePlan(0, None, 0)`` when none was ever stored. One primary-key read."""
        row = await self._db.first(
            select(t.runtime_settings.c.value, t.runtime_settings.c.generation).where(t.runtime_settings.c.name == PLAN)
        )
        if row is None:
            return StoragePlan(0, None, 0)
        document = json.loads(row.value)
        fallback = document.get("fallback")
        return StoragePlan(int(document["active"]), None if fallback is None else int(fallback), int(row.generation))

    async def plan_saved(self) -> tuple[datetime, str] | None:
        """When and by whom the plan was last changed (None: never)."""
        row = await self._db.first(
            select(t.runtime_settings.c.updated_at, t.runtime_settings.c.updated_by).where(
                t.runtime_settings.c.name == PLAN
            )
        )
        return None if row is None else (row.updated_at, row.updated_by)

    @staticmethod
    async def write_plan(conn: AsyncConnection, active: int, fallback: int | None, by: str) -> int:
        """Store the plan inside the caller's transaction; returns its new version."""
        document = StoragePlan(active, fallback).document()
        at = now()
        current = await conn.scalar(select(t.runtime_settings.c.generation).where(t.runtime_settings.c.name == PLAN))
        if current is None:
            await conn.execute(
                t.runtime_settings.insert().values(
                    name=PLAN, value=document, generation=1, updated_at=at, updated_by=by
                )
            )
            return 1
        await conn.execute(
            update(t.runtime_settings)
            .where(t.runtime_settings.c.name == PLAN)
            .values(value=document, generation=int(current) + 1, updated_at=at, updated_by=by)
        )
        return int(current) + 1

    async def set_plan(self, active: int, fallback: int | None, by: str) -> StoragePlan:
        """Change the plan without touching the index (e.g. an online migration starting or ending)."""
        async with self._db.writer.begin() as conn:
            version = await self.write_plan(conn, active, fallback, by)
        return StoragePlan(active, fallback, version)

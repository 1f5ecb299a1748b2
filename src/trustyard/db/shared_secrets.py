"""``SharedSecretStore``: the secrets every node of a cluster shares (token signing key, web session key), one
row each, stored sealed (the store never sees a value in the clear). The first node to start creates them:
``insert_if_absent`` lets concurrent first starts race safely, and every node then reads back the one row that
won. ``replace`` puts new values in place of the old (``trustyard keys rotate``)."""

from __future__ import annotations

from sqlalchemy import select

from trustyard.db import tables as t
from trustyard.db.database import Database, now


class SharedSecretStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert_if_absent(self, name: str, sealed: str, by: str) -> None:
        """Store ``sealed`` under ``name`` unless a row is there already (then keep that one)."""
        statement = self._db.insert_ignore(t.shared_secrets, ["name"]).values(
            name=name, sealed=sealed, created_at=now(), created_by=by
        )
        async with self._db.writer.begin() as conn:
            await conn.execute(statement)

    async def replace(self, sealed: dict[str, str], by: str) -> None:
        """Store each sealed value under its name in one transaction, in place of any there."""
        statement = self._db.upsert(t.shared_secrets)
        statement = statement.on_conflict_do_update(
            index_elements=["name"],
            set_={
                "sealed": statement.excluded.sealed,
                "created_at": statement.excluded.created_at,
                "created_by": statement.excluded.created_by,
            },
        )
        at = now()
        async with self._db.writer.begin() as conn:
            for name, value in sealed.items():
                await conn.execute(statement.values(name=name, sealed=value, created_at=at, created_by=by))

    async def get(self, name: str) -> str | None:
        """The sealed value, read from the writer so a row inserted a moment ago by another node is seen."""
        async with self._db.writer.connect() as conn:
            found = await conn.scalar(select(t.shared_secrets.c.sealed).where(t.shared_secrets.c.name == name))
        return None if found is None else str(found)

    async def any(self) -> bool:
        """Whether any node has stored a shared secret yet (a cluster exists)."""
        async with self._db.writer.connect() as conn:
            return await conn.scalar(select(t.shared_secrets.c.name).limit(1)) is not None

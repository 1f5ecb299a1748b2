"""``DatabaseInfo``: which database the index is (URL with the password masked, dialect) and the schema
revision Alembic last migrated it to, for ``trustyard info``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass(frozen=True, slots=True)
class DatabaseInfo:
    url: str  # the password shown as ***
    dialect: str  # sqlite, postgresql
    revision: str | None  # Alembic's version_num; None before the first migration


async def database_info(engine: AsyncEngine) -> DatabaseInfo:
    try:
        async with engine.connect() as conn:
            revision = await conn.scalar(text("SELECT version_num FROM alembic_version"))
    except SQLAlchemyError:  # no alembic_version table: never migrated
        revision = None
    return DatabaseInfo(engine.url.render_as_string(hide_password=True), engine.dialect.name, revision)

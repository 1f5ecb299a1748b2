"""Repository rows: the catalog, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.db.records import M, manifest, put
from trustyard.db.index import Index


async def test_catalog_pagination(index: Index) -> None:
    for name in ("c", "a", "b"):
        await put(index, name, manifest(M, ()), ["t"])
    assert await index.repositories.list_repositories(2, None) == ["a", "b"]
    assert await index.repositories.list_repositories(2, "b") == ["c"]

#!/usr/bin/env python3
"""Cost of one manifest-by-tag lookup in-process, without HTTP: trustyard's Index (SQLAlchemy async +
aiosqlite) vs. the same SQL on a plain sqlite3 connection, and how many aiosqlite thread round trips one
lookup makes.

    .venv/bin/python bench/index_micro.py DATA_DIR REPO TAG   (a data dir holding a pushed REPO:TAG)
"""

import asyncio
import resource
import sqlite3
import sys
import time

import aiosqlite.core

from trustyard.db.database import Database
from trustyard.db.engine import create_engine
from trustyard.db.index import Index

data, repo, tag = sys.argv[1], sys.argv[2], sys.argv[3]
N = 3000


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def main() -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{data}/trustyard.db")
    index = Index(Database(engine))
    assert await index.manifests.manifest_by_tag(repo, tag) is not None
    calls = 0
    orig = aiosqlite.core.Connection._execute

    async def counting(self, fn, *a, **k):
        nonlocal calls
        calls += 1
        return await orig(self, fn, *a, **k)

    aiosqlite.core.Connection._execute = counting
    await index.manifests.manifest_by_tag(repo, tag)
    print(f"aiosqlite thread round trips per manifest_by_tag: {calls}")
    aiosqlite.core.Connection._execute = orig
    for label, fn in (
        ("ManifestStore.manifest_by_tag (SQLAlchemy async + aiosqlite)", index.manifests.manifest_by_tag),
    ):
        t0, c0 = time.perf_counter(), cpu()
        for _ in range(N):
            await fn(repo, tag)
        t1, c1 = time.perf_counter(), cpu()
        print(f"{label:58s} {1e6 * (t1 - t0) / N:7.0f} us wall {1e6 * (c1 - c0) / N:7.0f} us CPU per lookup")
    await engine.dispose()

    conn = sqlite3.connect(f"{data}/trustyard.db")
    sql = (
        "SELECT m.digest, m.media_type, m.size, m.payload FROM manifests m JOIN tags t ON t.manifest_id = m.id "
        "JOIN repositories r ON r.id = t.repository_id WHERE r.name = ? AND t.name = ?"
    )
    try:
        conn.execute(sql, (repo, tag)).fetchone()
    except sqlite3.Error as exc:  # schema drift: fall back to SELECT *
        print(f"(raw SQL needs adjusting: {exc})")
        return
    t0, c0 = time.perf_counter(), cpu()
    for _ in range(N):
        conn.execute(sql, (repo, tag)).fetchone()
    t1, c1 = time.perf_counter(), cpu()
    print(
        f"{'same query, plain sqlite3 (synchronous, no thread)':58s} {1e6 * (t1 - t0) / N:7.0f} us wall "
        f"{1e6 * (c1 - c0) / N:7.0f} us CPU per lookup"
    )


asyncio.run(main())

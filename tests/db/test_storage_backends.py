"""Storage backends by generation, the plan, workers and adoptions in SQL (on SQLite and PostgreSQL), and
migration 0009 moving storage settings saved before it into ``storage_backends``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

from trustyard.db.engine import MIGRATIONS, create_engine, migrate, open_index
from trustyard.db.index import Index
from trustyard.db.storage_backends import StoragePlan
from trustyard.db.workers import WorkerRow


async def test_generations_grow_and_the_plan_moves_with_the_index_cleared_atomically(index: Index) -> None:
    assert await index.backends.plan() == StoragePlan(0, None, 0)
    first = await index.backends.add('{"filesystem": {}}', "admin")
    second = await index.backends.add('{"s3": {}}', "admin")
    assert (first, second) == (1, 2)
    plan = await index.switch_storage(second, None, "admin", adopt=True)
    assert plan == StoragePlan(2, None, 1)
    assert await index.backends.plan() == plan
    running = await index.adoptions.running()
    assert running is not None
    assert (running.generation, running.state) == (2, "running")
    # A migration's plan: reads fall back to the old backend; the index stays.
    plan = await index.backends.set_plan(first, second, "admin")
    assert await index.backends.plan() == StoragePlan(1, 2, 2)
    # A later switch supersedes the running adoption.
    await index.switch_storage(second, None, "admin", adopt=True)
    assert (await index.adoptions.get(running.id)).state == "superseded"  # type: ignore[union-attr]


async def test_workers_heartbeat_ack_and_lag(index: Index) -> None:
    at = datetime.now(UTC)
    for pid in (1, 2):
        await index.workers.heartbeat(WorkerRow(f"n:{pid}", "n", pid, "1.0", at, at, 0))
    await index.workers.ack("n:1", 5)
    assert [w.pid for w in await index.workers.lagging(5, timedelta(seconds=30))] == [2]
    assert [w.pid for w in await index.workers.lagging(5, timedelta(seconds=30), exclude="n:2")] == []
    await index.workers.heartbeat(WorkerRow("n:2", "n", 2, "1.0", at, at, 5))
    assert await index.workers.lagging(5, timedelta(seconds=30)) == []
    await index.workers.forget("n:1")
    assert [w.id for w in await index.workers.recent(timedelta(minutes=1))] == ["n:2"]


async def test_adoption_progress_and_finish(index: Index) -> None:
    adoption = await index.adoptions.start(0)
    assert await index.adoptions.progress(adoption, {"manifests": 10, "objects_listed": 99})
    await index.adoptions.finish(adoption, "done", {"manifests": 12})
    row = await index.adoptions.latest()
    assert row is not None
    assert (row.state, row.manifests, row.objects_listed) == ("done", 12, 99)
    assert not await index.adoptions.progress(adoption, {"manifests": 13})  # finished: no longer moves


async def test_migration_0009_moves_saved_settings_into_the_first_backend(database_url: str) -> None:
    engine = create_engine(database_url, pool=False)

    def upgrade_to(connection: Connection, revision: str) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    try:
        async with engine.begin() as conn:
            await conn.run_sync(upgrade_to, "0008")
            await conn.execute(
                text(
                    "INSERT INTO runtime_settings (name, value, generation, updated_at, updated_by) "
                    "VALUES ('storage', :value, 3, :at, 'alice')"
                ),
                {"value": '{"filesystem": {"rootdirectory": "/srv/images"}}', "at": datetime.now(UTC)},
            )
    finally:
        await engine.dispose()
    await migrate(database_url)
    index = open_index(database_url)
    try:
        assert await index.backends.plan() == StoragePlan(3, None, 3)
        stored = await index.backends.get(3)
        assert stored is not None
        assert json.loads(stored.settings) == {"filesystem": {"rootdirectory": "/srv/images"}}
        assert stored.saved_by == "alice"
        assert await index.backends.add("{}", "bob") == 4  # above every earlier generation
    finally:
        await index.dispose()

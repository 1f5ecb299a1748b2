"""Webhooks from a real ``trustyard serve`` with two workers: each event reaches the receiver exactly once and
in order (the workers share the queue through leases in SQL), on SQLite and on PostgreSQL, and events queued
while the receiver is down survive a restart of the registry."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.webhook_receiver import ThreadedReceiver as Receiver

from . import Clients, Registry, Server, start_registry, wait_until

pytestmark = [pytest.mark.clients, pytest.mark.trustyard_only(reason="trustyard's webhooks")]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    try:
        yield found
    finally:
        found.close()


def environment(receiver: Receiver) -> dict[str, str]:
    endpoint = {"name": "ci", "url": receiver.url, "backoff": "50ms", "threshold": 2, "ignore": {"actions": ["pull"]}}
    return {"TRUSTYARD_WORKERS": "2", "TRUSTYARD_NOTIFICATIONS": json.dumps({"endpoints": [endpoint]})}


def serve(data_dir: Path, receiver: Receiver, database_url: str | None = None) -> Registry:
    return start_registry("trustyard", data_dir, env=environment(receiver), database_url=database_url)


def restart(registry: Registry, receiver: Receiver) -> None:
    """The same command on the same data directory, as an operator restarts the service."""
    env = {**os.environ, **environment(receiver), "TRUSTYARD_ADMIN_PASSWORD": registry.password or ""}
    registry.server = Server(registry.server.cmd, registry.server.log, env=env)

    def ready() -> bool:
        try:
            return httpx.get(f"{registry.url}/readyz", verify=registry.ssl_context(), timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(ready, registry.server, "the restarted registry")


def wait_for(condition: Any, what: str) -> None:
    for _ in range(1200):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def push_tags(clients: Clients, layout: Path, registry: Registry, repo: str, tags: list[str]) -> None:
    """skopeo pushes each tag (as users do); the blobs exist after the first, the manifest push is the event."""
    clients.login(registry)
    for tag in tags:
        clients.push(layout, "latest", registry.ref(repo, tag))


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_workers_deliver_each_event_once_in_order(
    tmp_path: Path,
    receiver: Receiver,
    clients: Clients,
    busybox_layout: Path,
    request: pytest.FixtureRequest,
    database: str,
) -> None:
    url = request.getfixturevalue("postgres_url") if database == "postgres" else None
    registry = serve(tmp_path / "data", receiver, url)
    try:
        tags = [f"v{i}" for i in range(8)]
        push_tags(clients, busybox_layout, registry, "hooks/app", tags)
        wait_for(lambda: len(receiver.pushes()) >= len(tags), "every push event")
    finally:
        registry.stop()
    assert receiver.pushes() == tags
    ids = [e["id"] for e in receiver.events]
    assert len(ids) == len(set(ids)), "an event arrived twice"


def test_events_queued_while_the_receiver_is_down_survive_a_restart(
    tmp_path: Path, receiver: Receiver, clients: Clients, busybox_layout: Path
) -> None:
    receiver.down = True
    registry = serve(tmp_path / "data", receiver)
    try:
        push_tags(clients, busybox_layout, registry, "hooks/app", ["1.0", "1.1"])
    finally:
        registry.stop()
    assert receiver.pushes() == []
    receiver.down = False
    restart(registry, receiver)
    try:
        wait_for(lambda: len(receiver.pushes()) >= 2, "the events queued before the restart")
    finally:
        registry.stop()
    assert receiver.pushes() == ["1.0", "1.1"]

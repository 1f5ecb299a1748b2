"""Webhooks end to end in process: a real HTTP receiver on loopback (aiohttp), the registry's own push, pull,
delete and mount, the durable queue across a restart, and a receiver that fails and then recovers."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.registry.conftest import ADMIN, push_blob, push_image, running
from tests.webhook_receiver import Receiver, free_port, receiver
from trustyard.errors import Denied
from trustyard.services.actor import Actor, Credential
from trustyard.services.webhook_settings import NotificationsSettings

__all__ = ["receiver"]  # the fixture

SECRET = "receiver-shared-secret"


def notifications(url: str, **extra: Any) -> NotificationsSettings:
    """Distribution's block as an operator writes it, plus trustyard's ``secret``."""
    endpoint = {
        "name": "ci",
        "url": url,
        "headers": {"Authorization": ["Bearer receiver-token"]},
        "timeout": "2s",
        "threshold": 2,
        "backoff": "10ms",
        "ignoredmediatypes": ["application/octet-stream"],
        "secret": SECRET,
        **extra,
    }
    return NotificationsSettings.model_validate({"events": {"includereferences": True}, "endpoints": [endpoint]})


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for the background delivery loop (it runs every second, sooner when woken)."""
    for _ in range(600):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def test_push_pull_delete_events_signed_in_distribution_envelope(tmp_path: Path, receiver: Receiver) -> None:
    async with running(tmp_path / "data", notifications=notifications(receiver.url)) as registry:
        image = await push_image(registry.client, "team/app", "1.0")
        assert (await registry.client.get(f"/v2/team/app/manifests/{image.digest}")).status_code == 200
        assert (await registry.client.delete("/v2/team/app/manifests/1.0")).status_code == 202
        await until(lambda: [e["action"] for e in receiver.events()] == ["push", "pull", "delete"], "3 events")

    headers, body = receiver.received[0]
    assert headers["Content-Type"] == "application/vnd.docker.distribution.events.v1+json"
    assert headers["Authorization"] == "Bearer receiver-token"
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Trustyard-Signature"] == f"sha256={expected}"
    push, pull, delete = receiver.events()
    assert push["target"] == {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "size": len(image.manifest),
        "length": len(image.manifest),
        "digest": image.digest,
        "repository": "team/app",
        "url": f"http://registry.test/v2/team/app/manifests/{image.digest}",
        "tag": "1.0",
    }
    assert push["actor"] == {"name": "admin"}
    assert push["request"]["method"] == "PUT"
    assert push["request"]["host"] == "registry.test"
    assert set(push["source"]) == {"addr", "instanceID"}
    assert set(push) == {"id", "timestamp", "action", "target", "request", "actor", "source"}
    assert pull["target"]["digest"] == image.digest
    assert "tag" not in pull["target"]
    assert delete["target"] == {"repository": "team/app", "tag": "1.0"}
    # Blob events are there too, but this endpoint ignores the blobs' media type (ignoredmediatypes).
    assert all(e["target"].get("mediaType") != "application/octet-stream" for e in receiver.events())


async def test_blob_push_and_mount_events(tmp_path: Path, receiver: Receiver) -> None:
    block = notifications(receiver.url, ignoredmediatypes=[], ignore={"actions": ["pull"]})
    async with running(tmp_path / "data", notifications=block) as registry:
        digest = await push_blob(registry.client, "team/base", b"a shared layer")
        mounted = await registry.client.post(
            "/v2/team/app/blobs/uploads/", params={"mount": digest, "from": "team/base"}
        )
        assert mounted.status_code == 201, mounted.text
        assert (await registry.client.get(f"/v2/team/app/blobs/{digest}")).status_code == 200  # pull: ignored
        await until(lambda: len(receiver.events()) == 2, "push and mount")
    push, mount = receiver.events()
    assert (push["action"], push["target"]["digest"], push["target"]["mediaType"]) == (
        "push",
        digest,
        "application/octet-stream",
    )
    assert (mount["action"], mount["target"]["repository"], mount["target"]["fromRepository"]) == (
        "mount",
        "team/app",
        "team/base",
    )


async def test_a_failing_receiver_gets_every_event_in_order_once_it_recovers(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.failures = 5
    block = notifications(receiver.url, ignore={"actions": ["pull"]})
    async with running(tmp_path / "data", notifications=block) as registry:
        for tag in ("1", "2", "3"):
            await push_image(registry.client, "team/app", tag, seed=tag)
        await until(lambda: len(receiver.events()) == 3, "three pushes after recovery")
        log = await registry.client.get("/api/v1/webhooks/ci/deliveries", auth=ADMIN)
    assert receiver.refused == 5
    assert [e["target"]["tag"] for e in receiver.events()] == ["1", "2", "3"]
    assert log.status_code == 200, log.text
    deliveries = log.json()["deliveries"]
    assert [d["state"] for d in deliveries] == ["delivered"] * 3
    first = deliveries[-1]  # newest first
    assert [a["status_code"] for a in first["attempts"]] == [503] * 5 + [200]
    assert "receiver is down" in first["attempts"][0]["error"]


async def test_events_queued_before_a_restart_are_delivered_after_it(tmp_path: Path, receiver: Receiver) -> None:
    closed = f"http://127.0.0.1:{free_port()}/events"  # nothing listens: every attempt is refused
    async with running(tmp_path / "data", notifications=notifications(closed)) as registry:
        await push_image(registry.client, "team/app", "1.0")
        log = await registry.client.get("/api/v1/webhooks/ci/deliveries", auth=ADMIN)
    pending = log.json()["deliveries"]
    assert [d["state"] for d in pending] == ["pending"]
    # The operator points the endpoint at the receiver and restarts: the queued event survives.
    async with running(tmp_path / "data", notifications=notifications(receiver.url)):
        await until(lambda: len(receiver.events()) == 1, "the event queued before the restart")
    assert receiver.events()[0]["id"] == pending[0]["event_id"]
    assert receiver.events()[0]["target"]["tag"] == "1.0"


async def test_delivered_events_leave_the_log_after_its_age_pending_ones_stay(
    tmp_path: Path, receiver: Receiver
) -> None:
    async with running(tmp_path / "data", notifications=notifications(receiver.url)) as registry:
        await push_image(registry.client, "team/app", "1.0")
        await until(lambda: len(receiver.events()) == 1, "the push")
        webhooks = registry.asgi.state.services.webhooks
        assert await webhooks.prune(Actor.system(), timedelta(days=7)) == 0  # too young
        receiver.failures = 1000
        await push_image(registry.client, "team/app", "2.0", seed="2")
        assert await webhooks.prune(Actor.system(), timedelta(0)) == 1
        log = (await registry.client.get("/api/v1/webhooks/ci/deliveries", auth=ADMIN)).json()["deliveries"]
        assert [(d["state"], d["target"]["tag"]) for d in log] == [("pending", "2.0")]
        site_admin = Actor.user("admin", lambda _repository, _action: True, Credential.PASSWORD, None, admin=True)
        with pytest.raises(Denied):  # an operator action, not even a site administrator's
            await webhooks.prune(site_admin, timedelta(0))

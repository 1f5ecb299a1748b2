"""``/api/v1/gc``: start a collection, follow it to its end, read the history; bad options are 400s."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ..registry.conftest import ADMIN, BASE_URL, push_image, running


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with running(tmp_path / "data") as registry:
        await push_image(registry.client, "acme/app", "v1")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=registry.asgi), base_url=BASE_URL) as client:
            yield client


async def _finished(client: httpx.AsyncClient, run_id: int) -> dict[str, object]:
    for _ in range(600):  # a bound, not a timing assumption: the run takes milliseconds
        run: dict[str, object] = (await client.get(f"/api/v1/gc/runs/{run_id}", auth=ADMIN)).json()
        if run["status"] != "running":
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish")


async def test_start_follow_and_list(client: httpx.AsyncClient) -> None:
    started = await client.post("/api/v1/gc", json={"dry_run": True, "grace": "0s"}, auth=ADMIN)
    assert started.status_code == 202, started.text
    run = started.json()
    assert run["dry_run"] is True
    assert run["grace_seconds"] == 0
    done = await _finished(client, run["id"])
    assert done["status"] == "succeeded"
    assert isinstance(done["report"], dict)
    assert done["report"]["blobs"] == 0  # everything pushed is in use
    real = await client.post("/api/v1/gc", json={}, auth=ADMIN)
    assert real.status_code == 202
    assert (await _finished(client, real.json()["id"]))["grace_seconds"] == 7200
    status = (await client.get("/api/v1/gc", auth=ADMIN)).json()
    assert status["running"] is False
    assert status["last_run"]["id"] == real.json()["id"]
    runs = (await client.get("/api/v1/gc/runs?limit=5", auth=ADMIN)).json()["runs"]
    assert [r["id"] for r in runs] == [real.json()["id"], run["id"]]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"grace": "two hours"}, "write it like 90s"),
        ({"dry_run": "yes"}, "'dry_run' must be a bool"),
    ],
)
async def test_bad_options(client: httpx.AsyncClient, body: dict[str, object], words: str) -> None:
    response = await client.post("/api/v1/gc", json=body, auth=ADMIN)
    assert response.status_code == 400
    assert words in response.text


async def test_only_administrators(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/gc", json={})).status_code == 401


async def test_schedule_round_trip(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/gc/schedule", auth=ADMIN)).json() == {
        "every": "off",
        "untagged": False,
        "grace": "2h",
        "source": "config",
    }
    saved = await client.put("/api/v1/gc/schedule", json={"every": "1d", "untagged": True}, auth=ADMIN)
    assert saved.status_code == 200, saved.text
    assert saved.json() == {"every": "1d", "untagged": True, "grace": "2h", "source": "runtime"}
    too_often = await client.put("/api/v1/gc/schedule", json={"every": "10s"}, auth=ADMIN)
    assert too_often.status_code == 400
    assert "at most every 5m" in too_often.text

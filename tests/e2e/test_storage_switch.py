"""The atomic storage switch, end to end (issue 11): `trustyard serve` with two workers; storage is saved
through the admin API, filesystem → S3 (moto) → Swift → filesystem → S3 (Swift's S3 API) → ..., and right
after each save several clients push (chunked uploads, each on its own connection, so across the workers):
20 switches in a row, no failure, and every image pushed pulls back with every digest verified. A push that
straddles a switch (started before, finished after) succeeds and lands on the new backend.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from . import (
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Registry,
    canonical_json,
    sha256_digest,
    start_registry,
    wait_until,
)
from .stores import Store
from .test_gc_soak import Pushed, pull_and_verify

pytestmark = [pytest.mark.slow, pytest.mark.trustyard_only(reason="switching storage at run time is trustyard's own")]

SWITCHES = 20
CLIENTS = 4
CHUNK = 3000  # bytes per PATCH: every layer goes up in several chunks


@pytest.fixture(scope="module")
def stores() -> Iterator[list[Store]]:
    made = [Store.create("moto"), Store.create("swift"), Store.create("s3")]
    try:
        yield made
    finally:
        for store in made:
            with contextlib.suppress(Exception):
                store.remove()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    data_dir = tmp_path_factory.mktemp("switch") / "data"
    started = start_registry("trustyard", data_dir, env={"TRUSTYARD_WORKERS": "2"})
    try:
        yield started
    finally:
        started.stop()


def admin(registry: Registry) -> httpx.Client:
    assert registry.password is not None
    return httpx.Client(
        base_url=f"{registry.url}/api/v1", verify=registry.ssl_context(), auth=("admin", registry.password), timeout=60
    )


def save(registry: Registry, storage: dict[str, Any]) -> None:
    with admin(registry) as api:
        response = api.put("/settings/storage", json=storage)
        assert response.status_code == 200, response.text


def push_chunked(http: httpx.Client, repo: str, data: bytes) -> None:
    """POST, a PATCH per chunk (with Content-Range), PUT with the digest: what docker and containerd do."""
    start = http.post(f"/v2/{repo}/blobs/uploads/")
    assert start.status_code == 202, f"POST uploads: {start.status_code} {start.text}"
    location = start.headers["Location"]
    for offset in range(0, len(data), CHUNK):
        piece = data[offset : offset + CHUNK]
        headers = {"Content-Range": f"{offset}-{offset + len(piece) - 1}", "Content-Type": "application/octet-stream"}
        patch = http.patch(location, content=piece, headers=headers)
        assert patch.status_code == 202, f"PATCH at {offset}: {patch.status_code} {patch.text}"
        location = patch.headers["Location"]
    done = http.put(httpx.URL(location).copy_add_param("digest", sha256_digest(data)))
    assert done.status_code == 201, f"PUT upload: {done.status_code} {done.text}"


def push_image(registry: Registry, repo: str, tag: str, rng: random.Random) -> Pushed:
    with registry.http() as http:  # a connection of its own: the clients spread over the workers
        layers = [rng.randbytes(rng.randint(4000, 12000)) for _ in range(2)]
        config = canonical_json({"architecture": "amd64", "os": "linux", "tag": tag, "nonce": rng.random()})
        for data in [config, *layers]:
            push_chunked(http, repo, data)
        manifest = canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(config), "size": len(config)},
                "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": sha256_digest(b), "size": len(b)} for b in layers],
            }
        )
        put = http.put(f"/v2/{repo}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
        assert put.status_code == 201, f"PUT manifest {repo}:{tag}: {put.status_code} {put.text}"
        return Pushed(sha256_digest(manifest), manifest, {sha256_digest(b): b for b in [config, *layers]})


def backends(registry: Registry, stores: list[Store], tmp: Path) -> list[dict[str, Any]]:
    filesystem = [{"filesystem": {"rootdirectory": str(tmp / name)}} for name in ("fs-a", "fs-b")]
    moto, swift, s3 = (store.storage() for store in stores)
    return [moto, swift, filesystem[0], s3, filesystem[1]]


def test_save_then_push_at_once_across_workers_twenty_times(
    registry: Registry, stores: list[Store], tmp_path: Path
) -> None:
    # Both workers serve and have recorded themselves. /v2/ answering (the start's check) means one has: the
    # other may still be importing on a loaded machine, so wait for it rather than assert at once.
    with admin(registry) as api:

        def both_workers() -> bool:
            return [node["workers"] for node in api.get("/info").json()["nodes"]] == [2]

        wait_until(both_workers, registry.server, "the second worker", timeout=60)
    cycle = backends(registry, stores, tmp_path)
    failures: list[str] = []
    for round_number in range(SWITCHES):
        save(registry, cycle[round_number % len(cycle)])
        pushed: dict[tuple[str, str], Pushed] = {}

        def client(
            number: int, round_number: int = round_number, pushed: dict[tuple[str, str], Pushed] = pushed
        ) -> None:
            repo, tag = f"switch/c{number}", f"r{round_number}"
            try:
                pushed[(repo, tag)] = push_image(registry, repo, tag, random.Random(round_number * 100 + number))
            except Exception as exc:  # collected: every failure of every round is reported
                failures.append(f"round {round_number} client {number}: {exc}")

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures, "\n".join(failures)
        with registry.http() as http:
            for (repo, tag), image in pushed.items():
                pull_and_verify(http, repo, tag, image)


def test_a_push_straddling_a_switch_succeeds(registry: Registry, stores: list[Store], tmp_path: Path) -> None:
    cycle = backends(registry, stores, tmp_path)
    save(registry, cycle[0])
    rng = random.Random(42)
    first, second = rng.randbytes(CHUNK), rng.randbytes(CHUNK)
    layer = first + second
    config = canonical_json({"architecture": "amd64", "os": "linux", "straddle": True})
    with registry.http() as http:
        push_chunked(http, "switch/straddle", config)
        start = http.post("/v2/switch/straddle/blobs/uploads/")
        assert start.status_code == 202
        patch = http.patch(start.headers["Location"], content=first, headers={"Content-Range": f"0-{CHUNK - 1}"})
        assert patch.status_code == 202, patch.text

        save(registry, cycle[1])  # the session began on moto; Swift is active from here on

        more = http.patch(
            patch.headers["Location"], content=second, headers={"Content-Range": f"{CHUNK}-{2 * CHUNK - 1}"}
        )
        assert more.status_code == 202, more.text
        done = http.put(httpx.URL(more.headers["Location"]).copy_add_param("digest", sha256_digest(layer)))
        assert done.status_code == 201, done.text
        push_chunked(http, "switch/straddle", config)  # the config again: the new backend did not have it
        manifest = canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(config), "size": len(config)},
                "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": sha256_digest(layer), "size": len(layer)}],
            }
        )
        put = http.put("/v2/switch/straddle/manifests/v1", content=manifest, headers={"Content-Type": OCI_MANIFEST})
        assert put.status_code == 201, put.text
        image = Pushed(sha256_digest(manifest), manifest, {sha256_digest(config): config, sha256_digest(layer): layer})
        pull_and_verify(http, "switch/straddle", "v1", image)
    assert sha256_digest(layer).removeprefix("sha256:") in " ".join(stores[1].blob_keys())


ADOPTED = 300


def test_a_bucket_is_adopted_in_the_background_while_requests_answer(registry: Registry, tmp_path: Path) -> None:
    """Storage that already holds images (written as another registry left them) is indexed after the switch
    returns, in the background: /v2/ keeps answering quickly, progress shows, and every tag arrives."""
    import asyncio
    import time

    from trustyard.storage.filesystem import FilesystemDriver

    from ..stored_images import write_images

    root = tmp_path / "bucket"
    asyncio.run(write_images(FilesystemDriver(root), ADOPTED, repositories=20))
    started = time.monotonic()
    save(registry, {"filesystem": {"rootdirectory": str(root)}})
    assert time.monotonic() - started < 8.0  # the save does not index them inside the request

    progress: list[int] = []
    slowest = 0.0
    with admin(registry) as api, registry.http() as http:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            began = time.monotonic()
            assert http.get("/v2/").status_code == 200
            slowest = max(slowest, time.monotonic() - began)
            state = api.get("/settings/storage/adoption").json()
            progress.append(state["manifests"])
            if state["state"] != "running":
                break
            time.sleep(0.05)
        assert state["state"] == "done", state
        assert (state["repositories"], state["manifests"], state["tags"]) == (20, ADOPTED, ADOPTED)
        assert any(0 < count < ADOPTED for count in progress), progress  # served while it was indexing
        assert slowest < 2.0, f"/v2/ took {slowest:.2f}s during the adoption"
        tags = http.get("/v2/adopt/r7/tags/list").json()["tags"]
        assert len(tags) == ADOPTED // 20
        got = http.get(f"/v2/adopt/r7/manifests/{tags[0]}", headers={"Accept": OCI_MANIFEST})
        assert got.status_code == 200

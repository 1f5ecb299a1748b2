"""Garbage collection under load, end to end: a registry process, 16 HTTP clients and a collector process.

The soak: 16 clients push new images (some layers shared by all, pushed again and again), mount blobs across
repositories, delete tags and manifests and pull, while `trustyard gc` runs in a loop in its own process with
a grace window of seconds. Afterwards every manifest that was acknowledged and not deleted pulls back with
every blob verified by digest, and after a final collection storage holds exactly the blobs the registry
still references. Once on the filesystem + SQLite, once on Swift + PostgreSQL.

The crash test kills the collector (`kill -9`) at random points of its run: a rerun completes and nothing
live is lost.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

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
    trustyard_bin,
)
from .stores import Store

pytestmark = [pytest.mark.slow, pytest.mark.trustyard_only(reason="garbage collection is trustyard's own")]

CLIENTS = 16
SOAK_SECONDS = float(os.environ.get("TRUSTYARD_SOAK_SECONDS", "30"))  # per backend: ~2 minutes in all
#: The collector's grace window: seconds, yet longer than one image push takes here (object stores are slower).
GRACE = {"filesystem": "10s", "swift": "20s"}
SHARED = [random.Random(7000 + i).randbytes(8 << 10) for i in range(4)]


@dataclass
class Pushed:
    digest: str
    manifest: bytes
    blobs: dict[str, bytes]


@dataclass
class Ledger:
    """What the registry acknowledged and what was deleted since, shared by the clients."""

    live: dict[tuple[str, str], Pushed] = field(default_factory=dict)  # (repository, tag) → image
    lock: threading.Lock = field(default_factory=threading.Lock)
    counts: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def count(self, what: str) -> None:
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1


def _location(http: httpx.Client, response: httpx.Response, digest: str) -> httpx.URL:
    return http.base_url.join(response.headers["Location"]).copy_add_param("digest", digest)


def push_blob(http: httpx.Client, repo: str, data: bytes, mount_from: str | None = None) -> None:
    digest = sha256_digest(data)
    params = {"mount": digest, "from": mount_from} if mount_from else None
    start = http.post(f"/v2/{repo}/blobs/uploads/", params=params)
    if start.status_code == 201:
        return  # mounted
    assert start.status_code == 202, f"POST uploads: {start.status_code} {start.text}"
    done = http.put(_location(http, start, digest), content=data)
    assert done.status_code == 201, f"PUT upload {digest}: {done.status_code} {done.text}"


def push_image(http: httpx.Client, repo: str, tag: str, rng: random.Random, mount_from: str | None) -> Pushed:
    layers = [rng.randbytes(rng.randint(256, 4096)) for _ in range(rng.randint(1, 2))]
    shared = rng.sample(SHARED, rng.randint(0, 2))
    config = canonical_json({"architecture": "amd64", "os": "linux", "tag": tag, "nonce": rng.random()})
    blobs = {sha256_digest(b): b for b in [config, *layers, *shared]}
    for data in [config, *layers]:
        push_blob(http, repo, data)
    for data in shared:  # pushed again and again by everyone, or mounted from another client's repository
        push_blob(http, repo, data, mount_from)
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(config), "size": len(config)},
            "layers": [
                {"mediaType": OCI_LAYER_GZIP, "digest": sha256_digest(b), "size": len(b)} for b in [*layers, *shared]
            ],
        }
    )
    put = http.put(f"/v2/{repo}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert put.status_code == 201, f"PUT manifest {repo}:{tag}: {put.status_code} {put.text}"
    return Pushed(sha256_digest(manifest), manifest, blobs)


def pull_and_verify(http: httpx.Client, repo: str, tag: str, image: Pushed) -> None:
    got = http.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
    assert got.status_code == 200, f"GET {repo}:{tag}: {got.status_code} {got.text}"
    assert sha256_digest(got.content) == image.digest
    for digest in image.blobs:
        blob = http.get(f"/v2/{repo}/blobs/{digest}", follow_redirects=True)
        assert blob.status_code == 200, f"GET {repo} blob {digest}: {blob.status_code} {blob.text[:200]}"
        assert "sha256:" + hashlib.sha256(blob.content).hexdigest() == digest


def client_loop(registry: Registry, number: int, ledger: Ledger, stop: threading.Event) -> None:
    rng = random.Random(number)
    repo = f"soak/c{number}"
    mine: list[str] = []
    with registry.http() as http:
        while not stop.is_set():
            action = rng.choices(["push", "delete", "pull"], weights=[5, 2, 3])[0]
            try:
                if action == "push" or not mine:
                    tag = f"t{len(mine)}-{rng.randrange(10**6)}"
                    source = f"soak/c{rng.randrange(CLIENTS)}" if rng.random() < 0.3 else None
                    image = push_image(http, repo, tag, rng, source)
                    with ledger.lock:
                        ledger.live[(repo, tag)] = image
                    mine.append(tag)
                    ledger.count("pushed")
                elif action == "delete":
                    tag = mine.pop(rng.randrange(len(mine)))
                    with ledger.lock:
                        image = ledger.live.pop((repo, tag))
                    # Forget first: once the DELETE is sent the image may be gone, acknowledged or not.
                    by_digest = rng.random() < 0.5
                    target = image.digest if by_digest else tag
                    deleted = http.delete(f"/v2/{repo}/manifests/{target}")
                    assert deleted.status_code == 202, f"DELETE {repo}/{target}: {deleted.status_code}"
                    ledger.count("deleted")
                else:
                    tag = rng.choice(mine)
                    with ledger.lock:
                        image = ledger.live[(repo, tag)]
                    pull_and_verify(http, repo, tag, image)
                    ledger.count("pulled")
            except AssertionError as exc:
                ledger.failures.append(f"client {number} {action}: {exc}")
                ledger.count(f"failed {action}")


def collect(registry: Registry, env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(trustyard_bin()), "gc", *_location_flags(registry), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _location_flags(registry: Registry) -> list[str]:
    flags = ["--data-dir", str(registry.data_dir)]
    config = registry.data_dir.parent / f"{registry.data_dir.name}-config.yml"
    return [*flags, "--config", str(config)] if config.exists() else flags


def collector_loop(
    registry: Registry, env: Mapping[str, str], grace: str, stop: threading.Event, runs: list[str]
) -> None:
    n = 0
    while not stop.is_set():
        extra = ["--untagged"] if n % 2 else []
        done = collect(registry, env, "--grace", grace, *extra)
        # Another collector (none here) would make it exit 1 with "already running"; anything else is a bug.
        runs.append(done.stdout.strip() or done.stderr.strip())
        assert done.returncode == 0, done.stderr
        n += 1


def referenced(http: httpx.Client) -> set[str]:
    """Every digest the registry still references: each tagged manifest, its config and layers."""
    wanted: set[str] = set()
    catalog = http.get("/v2/_catalog", params={"n": 1000}).json()["repositories"]
    for repo in catalog:
        for tag in http.get(f"/v2/{repo}/tags/list").json().get("tags") or []:
            got = http.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
            manifest = json.loads(got.content)
            wanted |= {sha256_digest(got.content), manifest["config"]["digest"]}
            wanted |= {layer["digest"] for layer in manifest["layers"]}
    return wanted


def filesystem_blobs(registry: Registry) -> set[str]:
    root = registry.storage_root / "docker/registry/v2/blobs"
    return {f"{p.parts[-4]}:{p.parts[-2]}" for p in root.rglob("data")}


def store_blobs(store: Store) -> set[str]:
    return {f"{key.split('/')[-4]}:{key.split('/')[-2]}" for key in store.blob_keys()}


def soak(registry: Registry, env: Mapping[str, str], grace: str, stored: Callable[[], set[str]]) -> None:
    ledger, stop, runs = Ledger(), threading.Event(), list[str]()
    collector_stop = threading.Event()
    collector = threading.Thread(target=collector_loop, args=(registry, env, grace, collector_stop, runs))
    clients = [threading.Thread(target=client_loop, args=(registry, n, ledger, stop)) for n in range(CLIENTS)]
    collector.start()
    for thread in clients:
        thread.start()
    time.sleep(SOAK_SECONDS)  # how long the load lasts, not a wait for something to happen
    stop.set()
    for thread in clients:
        thread.join()
    collector_stop.set()
    collector.join()
    assert ledger.counts.get("pushed", 0) > CLIENTS, ledger.counts
    assert ledger.counts.get("deleted", 0) > 0, ledger.counts
    assert len(runs) >= 2, runs
    # Pushes may fail only as the protocol says they can (a push meeting a collection: push again).
    unexpected = [f for f in ledger.failures if "push" not in f.split(":")[0] or "push it again" not in f]
    assert not unexpected, "\n".join([str(ledger.counts), *unexpected[:5]])
    with registry.http() as http:
        for (repo, tag), image in ledger.live.items():
            pull_and_verify(http, repo, tag, image)
        final = collect(registry, env, "--grace", "0s", "--untagged")
        assert final.returncode == 0, final.stderr
        wanted = referenced(http)
        for (repo, tag), image in ledger.live.items():
            pull_and_verify(http, repo, tag, image)
    held = stored()
    print(f"soak: {ledger.counts}, {len(runs)} collections, last: {runs[-1]}")
    assert held == wanted, {"leaked": sorted(held - wanted)[:5], "lost": sorted(wanted - held)[:5], **ledger.counts}


@pytest.fixture
def fs_registry(tmp_path: Path) -> Iterator[Registry]:
    registry = start_registry("trustyard", tmp_path / "data")
    try:
        yield registry
    finally:
        registry.stop()


def test_soak_filesystem_sqlite(fs_registry: Registry) -> None:
    soak(fs_registry, {}, GRACE["filesystem"], lambda: filesystem_blobs(fs_registry))


@pytest.mark.postgres
def test_soak_swift_postgres(tmp_path: Path, postgres_url: str) -> None:
    store = Store.create("swift")
    try:
        registry = start_registry("trustyard", tmp_path / "data", database_url=postgres_url, storage=store.storage())
        try:
            soak(registry, {"TRUSTYARD_DATABASE_URL": postgres_url}, GRACE["swift"], lambda: store_blobs(store))
        finally:
            registry.stop()
    finally:
        store.remove()


def _last_run(registry: Registry) -> int:
    with sqlite3.connect(registry.data_dir / "trustyard.db", timeout=30) as db:
        return int(db.execute("SELECT coalesce(max(id), 0) FROM gc_runs").fetchone()[0])


def test_killed_collector_loses_nothing(fs_registry: Registry) -> None:
    rng = random.Random(99)
    kept: dict[str, Pushed] = {}
    kills = 0
    with fs_registry.http() as http:
        for round_ in range(6):
            for n in range(16):  # work for this round's collector: half the new images are deleted
                tag = f"r{round_}-{n}"
                image = push_image(http, "crash/app", tag, rng, None)
                if n % 2:
                    assert http.delete(f"/v2/crash/app/manifests/{image.digest}").status_code == 202
                else:
                    kept[tag] = image
            before = _last_run(fs_registry)
            process = subprocess.Popen(
                [str(trustyard_bin()), "gc", "--data-dir", str(fs_registry.data_dir), "--grace", "0s", "--untagged"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            while process.poll() is None and _last_run(fs_registry) == before:
                time.sleep(0.01)  # until the collector has begun its run (bounded by the process ending)
            time.sleep(rng.uniform(0, 0.1))  # then a random point of the run (which takes a fraction of a second)
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                kills += 1
            process.wait()
            for tag, image in kept.items():
                pull_and_verify(http, "crash/app", tag, image)
        final = collect(fs_registry, {}, "--grace", "0s", "--untagged")
        assert final.returncode == 0, final.stderr
        for tag, image in kept.items():
            pull_and_verify(http, "crash/app", tag, image)
        assert filesystem_blobs(fs_registry) == referenced(http)
        history = json.loads(collect(fs_registry, {}, "history", "--limit", "10").stdout)
    statuses = [r["status"] for r in history["runs"]]
    assert statuses[0] == "succeeded"
    # A kill may land after the run finished (the process still exiting): then the run "succeeded".
    assert 1 <= statuses.count("interrupted") <= kills, statuses

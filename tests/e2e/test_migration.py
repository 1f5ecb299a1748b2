"""Online migration between backends, end to end: a registry process holding a population of images
(tests/e2e/population.py: shared layers, multi-arch indexes, referrers, sha512 content) is migrated
filesystem → Swift → S3 (moto) → filesystem while clients push and pull, and then every tag pulls back from the
final backend with every digest verified, the images pushed during the migrations too.

The first and last hops go through the admin API (the copy runs in a server worker); the middle one through
`trustyard storage migrate --to FILE` in its own process, killed with `kill -9` part-way: the server's workers
take the copy over (its lease names a process that is gone) and re-running the command follows it to the end.

Size: 200 images as the issue asks, with TRUSTYARD_MIGRATION_MIB of layers (default 64). The issue asks for
about 1 GiB; on this machine (2 cores shared with other engineers' suites, load average near 10) what costs
is the number of objects on Swift, not bytes: 64 MiB took 157 s, 66 s and 18 s for the three hops (~4 min),
6m52s for the whole test with pushing, verifying and emptying the stores. Set TRUSTYARD_MIGRATION_MIB=1024 for
the issue's size on a quieter machine. What was used is printed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from . import Registry, start_registry, trustyard_bin
from .population import MiB, Population, Shape, populate, push_image, verify
from .stores import Store

pytestmark = [pytest.mark.slow, pytest.mark.trustyard_only(reason="online migration is trustyard's own")]

SIZE_MIB = int(os.environ.get("TRUSTYARD_MIGRATION_MIB", "64"))
MIGRATION = "/api/v1/settings/storage/migration"
#: How long one hop may take before the test gives up.
HOP_TIMEOUT = 600.0


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    started = start_registry("trustyard", tmp_path / "data")
    try:
        yield started
    finally:
        started.stop()


def admin(registry: Registry) -> httpx.Client:
    return httpx.Client(
        base_url=registry.url, verify=registry.ssl_context(), auth=("admin", registry.password or ""), timeout=60
    )


class Traffic:
    """Clients pushing new images and pulling known ones (verified) while a migration runs."""

    def __init__(self, registry: Registry, population: Population, clients: int = 3) -> None:
        self.registry = registry
        self.population = population
        self.failures: list[str] = []
        self.counts = {"pushed": 0, "pulled": 0}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(clients)]
        self._lock = threading.Lock()

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)

    def _client(self, number: int) -> None:
        rng = random.Random(number * 7919 + int(time.time()))
        with self.registry.http() as http:
            while not self._stop.is_set():
                time.sleep(0.25)  # a steady trickle: every object pushed is one more to migrate twice
                try:
                    if rng.random() < 0.3:
                        n = rng.randrange(10**9)
                        tag = f"live-{number}-{n}"
                        image = push_image(http, f"mig/live{number}", tag, n, rng.randint(1024, 64 * 1024), (1, 2048))
                        self.population.add(image)
                        self._count("pushed")
                    else:
                        with self.population.lock:
                            pushed = rng.choice(self.population.manifests)
                        single = Population(manifests=[pushed])
                        verify(http, single)
                        self._count("pulled")
                except (AssertionError, httpx.HTTPError) as exc:
                    self.failures.append(f"client {number}: {exc}"[:500])
                    time.sleep(0.2)

    def _count(self, what: str) -> None:
        with self._lock:
            self.counts[what] += 1


def wait_done(api: httpx.Client, what: str) -> dict[str, Any]:
    deadline = time.monotonic() + HOP_TIMEOUT
    while time.monotonic() < deadline:
        status = api.get(MIGRATION).json()
        if status["state"] not in ("copying", "switching"):
            assert status["state"] == "done", status
            return status
        time.sleep(0.5)
    raise AssertionError(f"{what}: still not done after {HOP_TIMEOUT}s: {api.get(MIGRATION).json()}")


def migrate_by_api(registry: Registry, block: dict[str, Any], what: str) -> dict[str, Any]:
    with admin(registry) as api:
        started = api.post(MIGRATION, json=block)
        assert started.status_code == 202, f"{what}: {started.status_code} {started.text}"
        done = wait_done(api, what)
    return done


def migrate_by_cli_killed_then_resumed(registry: Registry, block: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """`trustyard storage migrate --to FILE`, killed with -9 once a third of the bytes are copied; then run
    again: it resumes (or follows the server worker that took the copy over) to the end."""
    target = tmp_path / "to.yml"
    target.write_text(json.dumps({"storage": block}))
    command = [str(trustyard_bin()), "storage", "migrate", "--data-dir", str(registry.data_dir), "--to", str(target)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed_at = None
    with admin(registry) as api:
        deadline = time.monotonic() + HOP_TIMEOUT
        while process.poll() is None and time.monotonic() < deadline:
            response = api.get(MIGRATION)
            status = response.json() if response.status_code == 200 else {}
            if status.get("state") == "copying" and status["bytes"]["done"] > status["bytes"]["total"] / 3:
                os.kill(process.pid, signal.SIGKILL)
                killed_at = status["bytes"]["done"]
                break
            time.sleep(0.2)
        process.wait()
        assert killed_at is not None, f"the command ended before it could be killed: {process.stderr.read()[-2000:]}"  # type: ignore[union-attr]
        interrupted = api.get(MIGRATION).json()
        assert interrupted["state"] == "copying", interrupted
        rerun = subprocess.run(command, capture_output=True, text=True, timeout=HOP_TIMEOUT)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert f"migration {interrupted['id']} done" in rerun.stdout, rerun.stdout
        done = api.get(MIGRATION).json()
    assert done["state"] == "done"
    print(f"cli hop: killed at {killed_at} of {done['bytes']['total']} bytes; {done['report']['summary']}")
    return done


def test_filesystem_to_swift_to_s3_to_filesystem_while_serving(registry: Registry, tmp_path: Path) -> None:
    shape = Shape(total_bytes=SIZE_MIB * MiB)
    started = time.monotonic()
    population = populate(registry.http, shape)
    took = time.monotonic() - started
    print(f"pushed {len(population.manifests)} manifests, {population.size / MiB:.0f} MiB in {took:.0f}s")
    swift, s3 = Store.create("swift"), Store.create("moto")
    final = tmp_path / "final-storage"
    hops: list[tuple[str, dict[str, Any], float]] = []
    try:
        with Traffic(registry, population) as traffic:
            at = time.monotonic()
            done = migrate_by_api(registry, swift.storage(), "filesystem → swift")
            hops.append(("filesystem → swift (admin API)", done, time.monotonic() - at))
            at = time.monotonic()
            done = migrate_by_cli_killed_then_resumed(registry, s3.storage(), tmp_path)
            hops.append(("swift → s3 (CLI, killed and resumed)", done, time.monotonic() - at))
            at = time.monotonic()
            done = migrate_by_api(registry, {"filesystem": {"rootdirectory": str(final)}}, "s3 → filesystem")
            hops.append(("s3 → filesystem (admin API)", done, time.monotonic() - at))
        for what, hop, seconds in hops:
            print(f"{what}: {hop['objects']['done']} objects, {hop['bytes']['done'] / MiB:.0f} MiB in {seconds:.0f}s")
            assert hop["failed"] == 0, hop["report"]
            assert hop["objects"]["done"] >= hop["objects"]["total"]
        print(f"traffic during the migrations: {traffic.counts}")
        assert traffic.failures == [], traffic.failures[:10]
        assert traffic.counts["pushed"] > 0
        assert traffic.counts["pulled"] > 0

        with admin(registry) as api:
            shown = api.get("/api/v1/settings/storage").json()
        assert shown["driver"] == "filesystem"
        assert shown["parameters"]["rootdirectory"] == str(final)
        with registry.http() as http:
            counts = verify(http, population)
        print(f"verified from the final backend: {counts}")
        assert counts["manifests"] == len(population.manifests)
        held = {p.name for p in (final / "docker/registry/v2/blobs").rglob("*") if p.is_dir() and len(p.name) > 60}
        assert {d.partition(":")[2] for d in population.blobs} <= held, "every blob is in the final backend"
        assert len(swift.blob_keys()) > 0, "the Swift container was left intact"
        assert len(s3.blob_keys()) > 0, "the S3 bucket was left intact"
        assert (registry.data_dir / "storage/docker/registry/v2/blobs").is_dir(), "the first backend too"
    finally:
        for store in (swift, s3):
            store.remove()

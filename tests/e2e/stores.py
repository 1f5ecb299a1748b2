"""Object stores for the end-to-end tests: a fresh bucket or container per test on scripts/object-store.sh.

`Store.create(kind)` makes one: ``swift`` (the Swift API, v1.0 auth; the drivers create the container),
``s3`` (Swift's S3 API) or ``moto`` (an S3 bucket made with boto3: Distribution's s3 driver does not create
buckets). `storage()` is the Distribution-style ``storage:`` block that trustyard and CNCF Distribution both
take; `remove()` empties and deletes it (what a failed test left, too). Also here: running registries as
context managers (always stopped), the registries' process memory, and a fault proxy in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest

from tests.storage.faults import Fault, FaultProxy
from tests.storage.s3_store import boto_client, endpoint

from . import Registry, start_registry

KINDS = ("swift", "s3", "moto")
PREFIX = "registry"  # every store keeps the registry under a root directory / prefix, as operators do


@dataclass
class Store:
    kind: str
    name: str
    url: str  # S3 endpoint, or the Swift auth URL
    access: str
    secret: str
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, kind: str, **extra: Any) -> Store:
        name = f"e2e-{uuid.uuid4().hex[:16]}"
        if kind == "swift":
            url = os.environ.get("SWIFT_AUTH_URL", "http://127.0.0.1:8080/auth/v1.0")
            _reachable(url)
            user = os.environ.get("SWIFT_USERNAME", "test:tester")
            return cls(kind, name, url, user, os.environ.get("SWIFT_PASSWORD", "testing"), dict(extra))
        where = endpoint("swift" if kind == "s3" else "moto")  # skips when the store is not running
        store = cls(kind, name, where.url, where.access, where.secret, dict(extra))
        store.s3().create_bucket(Bucket=name)
        return store

    def storage(self, **overrides: Any) -> dict[str, Any]:
        """The ``storage:`` block (Distribution's parameter names) for this bucket or container."""
        if self.kind == "swift":
            block: dict[str, Any] = {
                "authurl": self.url,
                "username": self.access,
                "password": self.secret,
                "container": self.name,
                "prefix": PREFIX,
            }
        else:
            block = {
                "region": "us-east-1",
                "regionendpoint": self.url,
                "accesskey": self.access,
                "secretkey": self.secret,
                "bucket": self.name,
                "rootdirectory": f"/{PREFIX}",
            }
        block.update(self.extra)
        block.update(overrides)
        return {"swift" if self.kind == "swift" else "s3": block}

    @property
    def driver(self) -> str:
        return "swift" if self.kind == "swift" else "s3"

    def with_endpoint(self, url: str) -> Store:
        """The same bucket reached through another URL (a fault proxy); Swift keeps the auth path."""
        if self.kind == "swift":
            url = url + urlsplit(self.url).path
        return Store(self.kind, self.name, url, self.access, self.secret, dict(self.extra))

    # Inspection, with the stores' own clients -----------------------------------------------------------

    def s3(self) -> Any:
        return boto_client(endpoint("swift" if self.kind == "s3" else "moto"))

    def _swift_session(self) -> tuple[str, dict[str, str]]:
        response = httpx.get(self.url, headers={"X-Auth-User": self.access, "X-Auth-Key": self.secret})
        response.raise_for_status()
        return f"{response.headers['X-Storage-Url']}/{self.name}", {"X-Auth-Token": response.headers["X-Auth-Token"]}

    def names(self, prefix: str = "") -> list[str]:
        """Every object name in the bucket or container under `prefix`."""
        if self.kind != "swift":
            client, names = self.s3(), []
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix):
                names += [entry["Key"] for entry in page.get("Contents", [])]
            return sorted(names)
        url, headers = self._swift_session()
        names, marker = [], ""
        while True:
            params = {"format": "json", "prefix": prefix, "marker": marker}
            response = httpx.get(url, params=params, headers=headers, timeout=60)
            if response.status_code == 404:
                return []
            response.raise_for_status()
            page = [entry["name"] for entry in response.json()] if response.status_code == 200 else []
            if not page:
                return sorted(names)
            names += page
            marker = page[-1]

    def blob_keys(self) -> list[str]:
        """The `data` objects of blobs, in the layout's place for the driver (Swift: under `files/`)."""
        root = f"{PREFIX}/files/" if self.kind == "swift" else f"{PREFIX}/"
        return [n for n in self.names(root + "docker/registry/v2/blobs/") if n.endswith("/data")]

    def remove(self) -> None:
        """Empty and delete the bucket or container (best effort: what a failed test left, too).

        In batches (Swift's bulk delete, S3's DeleteObjects): a soak leaves thousands of small objects, and
        one DELETE each took longer than the test itself."""
        with contextlib.suppress(Exception):
            names = self.names()
            if self.kind == "swift":
                url, headers = self._swift_session()
                account, container = url.rsplit("/", 1)
                for batch in _batches(names, 1000):  # Swift's bulk middleware takes up to 10,000 per request
                    body = "\n".join(f"/{container}/{quote(name)}" for name in batch)
                    httpx.post(
                        account,
                        params={"bulk-delete": ""},
                        content=body.encode(),
                        headers={**headers, "Content-Type": "text/plain", "Accept": "application/json"},
                        timeout=300,
                    ).raise_for_status()
                httpx.delete(url, headers=headers)
                return
            client = self.s3()
            for upload in client.list_multipart_uploads(Bucket=self.name).get("Uploads", []):
                client.abort_multipart_upload(Bucket=self.name, Key=upload["Key"], UploadId=upload["UploadId"])
            for batch in _batches(names, 1000):  # DeleteObjects takes up to 1,000 keys
                objects = [{"Key": key} for key in batch]
                client.delete_objects(Bucket=self.name, Delete={"Objects": objects, "Quiet": True})
            client.delete_bucket(Bucket=self.name)


def _batches(names: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(names), size):
        yield names[start : start + size]


def _reachable(url: str) -> None:
    import socket

    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=1).close()
    except OSError:
        pytest.skip(f'the object store at {url} is not running: eval "$(bash scripts/object-store.sh start)"')


@contextlib.contextmanager
def running(
    kind: str, data_dir: Path, storage: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> Iterator[Registry]:
    """A registry on `storage`, stopped on the way out whatever happens."""
    registry = start_registry(kind, data_dir, env=env, storage=storage)
    try:
        yield registry
    finally:
        registry.stop()


def wait_adopted(registry: Registry, timeout: float = 120.0) -> dict[str, Any]:
    """Wait until the registry's background adoption of its storage is done (the admin API says how far)."""
    assert registry.password is not None
    deadline = time.monotonic() + timeout
    with httpx.Client(verify=registry.ssl_context(), auth=("admin", registry.password), timeout=30) as api:
        while True:
            state: dict[str, Any] = api.get(f"{registry.url}/api/v1/settings/storage/adoption").json()
            if state["state"] != "running":
                assert state["state"] == "done", state
                return state
            assert time.monotonic() < deadline, f"adoption still running after {timeout}s: {state}"
            time.sleep(0.2)


# --------------------------------------------------------------------------------------------------------
# Memory of a registry's processes


def group_pids(pgid: int) -> list[int]:
    """Every process in the process group `pgid` (the registry and its workers)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:  # state, ppid, pgrp, ...
            pids.append(int(entry))
    return pids


def status_kib(pid: int, name: str) -> int:
    """A `VmRSS`/`VmHWM` line of /proc/PID/status, in KiB (0 when the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class MemorySampler:
    """Samples the summed VmRSS of a process group in a thread; `peak` is the highest sum seen, in MiB.
    `hwm()` sums each process's own high-water mark (VmHWM), an upper bound of any simultaneous peak."""

    def __init__(self, pgid: int, interval: float = 0.2) -> None:
        self.pgid = pgid
        self.interval = interval
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> float:
        return sum(status_kib(pid, "VmRSS") for pid in group_pids(self.pgid)) / 1024

    def hwm(self) -> dict[int, float]:
        return {pid: status_kib(pid, "VmHWM") / 1024 for pid in group_pids(self.pgid)}

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.rss())

    def __enter__(self) -> MemorySampler:
        self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


# --------------------------------------------------------------------------------------------------------
# Faults


class ThreadedFaultProxy:
    """tests/storage/faults.py's FaultProxy, on its own event loop in a thread, for registries in processes."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.proxy: FaultProxy = self._call(FaultProxy(parts.hostname or "127.0.0.1", parts.port or 80).start())

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(30)

    @property
    def url(self) -> str:
        return self.proxy.url

    def always(self, fault: Fault | None, match: Callable[[str, str], bool] | None = None) -> None:
        def apply() -> None:
            self.proxy.match = match or (lambda _method, _path: True)
            self.proxy.always(fault)

        self._loop.call_soon_threadsafe(apply)
        time.sleep(0.05)  # applied before the next request is read

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._call(self.proxy.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> ThreadedFaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

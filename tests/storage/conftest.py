"""The ``driver`` fixture: every storage backend, each checked for leaks after every test.

A backend is added by one more ``Backend`` in ``_BACKENDS``: ``make`` opens another driver instance on the
same store (as a second node would), ``leftovers`` names whatever a test must not leave behind beyond keys
(temp files, staging files, empty directories, open uploads), ``cleanup`` drops what the backend made for the
test (a bucket). The S3 backends run against the real servers of scripts/object-store.sh and skip, saying
so, when it is not running.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.storage.s3_store import S3Bucket
from tests.storage.swift_store import SwiftContainer
from trustyard.storage.driver import StorageDriver
from trustyard.storage.fallback import FallbackDriver
from trustyard.storage.filesystem import TEMP_DIR, FilesystemDriver
from trustyard.storage.memory import MemoryDriver, MemoryStore


@dataclass(frozen=True)
class Backend:
    make: Callable[[], StorageDriver]
    leftovers: Callable[[], list[str]]
    #: Runs after the test (and its leak checks): drops per-test buckets or containers.
    cleanup: Callable[[], None] = lambda: None


def _memory(_tmp_path: Path) -> Backend:
    store = MemoryStore()
    return Backend(make=lambda: MemoryDriver(store), leftovers=lambda: [f"upload {t}" for t in store.uploads])


def _fallback(_tmp_path: Path) -> Backend:
    """A FallbackDriver (storage/fallback.py) over two memory stores, as a worker serves during a migration:
    the contract holds for it as for any backend, and nothing may reach the old store (its fallback)."""
    new, old = MemoryStore(), MemoryStore()

    def leftovers() -> list[str]:
        return [f"upload {t}" for t in [*new.uploads, *old.uploads]] + [f"fallback key {k}" for k in old.objects]

    return Backend(make=lambda: FallbackDriver(MemoryDriver(new), MemoryDriver(old)), leftovers=leftovers)


def _filesystem(tmp_path: Path) -> Backend:
    root = tmp_path / "root"
    return Backend(make=lambda: FilesystemDriver(root), leftovers=lambda: _filesystem_leftovers(root))


def _filesystem_leftovers(root: Path) -> list[str]:
    """Files in the temp area, and anything at all outside it (no keys remain, so no directories either)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath).relative_to(root)
        in_temp = here.parts[:1] == (TEMP_DIR,)
        found += [str(here / name) for name in filenames]
        found += [f"{here / name}/" for name in dirnames if not in_temp and (here / name).parts != (TEMP_DIR,)]
    return sorted(found)


def _s3(store: str) -> Callable[[Path], Backend]:
    """A fresh bucket per test on ``store`` (tests/storage/s3_store.py); skips when the store is not running."""

    def factory(_tmp_path: Path) -> Backend:
        bucket = S3Bucket.create(store)
        return Backend(make=bucket.driver, leftovers=bucket.open_uploads, cleanup=bucket.remove)

    return factory


_s3_swift = _s3("swift")  # Swift's S3 API (s3api): checks signatures, wants Content-MD5 on DeleteObjects
_s3_moto = _s3("moto")  # moto in server mode: a second, independent S3 implementation


def _swift(_tmp_path: Path) -> Backend:
    """A fresh container per test on the Swift API (tests/storage/swift_store.py), 1 MiB segments."""
    container = SwiftContainer.create()
    return Backend(make=container.driver, leftovers=container.leftovers, cleanup=container.remove)


_BACKENDS: dict[str, Callable[[Path], Backend]] = {
    "memory": _memory,
    "fallback": _fallback,
    "filesystem": _filesystem,
    "s3-swift": _s3_swift,
    "s3-moto": _s3_moto,
    "swift": _swift,
}


@pytest.fixture(params=sorted(_BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    factory: Callable[[Path], Backend] = _BACKENDS[request.param]
    made = factory(tmp_path)
    yield made
    made.cleanup()


@pytest.fixture
async def driver(backend: Backend) -> AsyncIterator[StorageDriver]:
    driver = backend.make()
    assert isinstance(driver, StorageDriver)
    yield driver
    remaining = [key async for key in driver.list("")]
    await driver.close()
    assert remaining == [], "the test left keys behind"
    assert backend.leftovers() == [], "the test left temp files, staging files, uploads or directories behind"


@pytest.fixture
def another_driver(backend: Backend) -> Callable[[], StorageDriver]:
    """Opens another driver instance on the same store, as a second node would (the caller closes it)."""
    return backend.make

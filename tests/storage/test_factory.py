"""build_driver: the driver a StorageSettings names, waiting for its store as the Patience it is given says.

The stores here are loopback sockets that never answer, so no object store is needed: what is checked is
that the patience reaches the network drivers (a try ends at its read timeout, and there are ``attempts``
of them), not how fast anything is."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from trustyard.errors import StorageUnavailable
from trustyard.storage.config import StorageSettings
from trustyard.storage.driver import Patience
from trustyard.storage.factory import build_driver
from trustyard.storage.filesystem import FilesystemDriver
from trustyard.storage.metered import MeteredDriver

#: Two tries, each given up after half a second of silence.
BRIEF = Patience(attempts=2, connect_timeout=2.0, read_timeout=0.5)


class Silent:
    """A loopback listener that accepts connections and never answers (the kernel buffers what is sent)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []

    async def serve(self) -> None:
        self.sock.setblocking(False)
        loop = asyncio.get_running_loop()
        while True:
            connection, _ = await loop.sock_accept(self.sock)
            self.accepted.append(connection)

    def close(self) -> None:
        for connection in self.accepted:
            connection.close()
        self.sock.close()


@pytest.fixture
def silent() -> Iterator[Silent]:
    listener = Silent()
    yield listener
    listener.close()


def _s3(port: int) -> StorageSettings:
    return StorageSettings.model_validate(
        {
            "s3": {
                "bucket": "b",
                "region": "us-east-1",
                "regionendpoint": f"http://127.0.0.1:{port}",
                "accesskey": "a",
                "secretkey": "s",
            }
        }
    )


def _swift(port: int) -> StorageSettings:
    return StorageSettings.model_validate(
        {
            "swift": {
                "authurl": f"http://127.0.0.1:{port}/auth/v1.0",
                "username": "a:b",
                "password": "p",
                "container": "c",
            }
        }
    )


@pytest.mark.parametrize("settings", [_s3, _swift], ids=["s3", "swift"])
async def test_a_silent_store_is_given_up_on_after_the_read_timeout_of_each_attempt(
    silent: Silent, settings: object, tmp_path: Path
) -> None:
    driver = build_driver(settings(silent.port), tmp_path, BRIEF)  # type: ignore[operator]
    server = asyncio.create_task(silent.serve())
    try:
        # Without the patience reaching the driver, this would wait minutes (five tries of 60 s): wait_for turns
        # that into a failure rather than a hang.
        with pytest.raises(StorageUnavailable, match=r"(?i)time"):
            await asyncio.wait_for(driver.stat("t/x"), 30)
    finally:
        server.cancel()
        await driver.close()
    assert len(silent.accepted) == BRIEF.attempts


def test_the_filesystem_takes_no_patience(tmp_path: Path) -> None:
    driver = build_driver(StorageSettings(), tmp_path / "root", BRIEF)
    assert isinstance(driver, MeteredDriver)
    assert isinstance(driver.inner, FilesystemDriver)

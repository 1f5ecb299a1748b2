"""Fixtures of the end-to-end suite: the registry under test, a private dockerd, clients, test images.

`TRUSTYARD_TEST_TARGET=distribution` runs the same tests against CNCF Distribution (`docker-registry`);
tests marked `trustyard_only` are then skipped.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import (
    TARGET,
    Clients,
    Docker,
    DockerUnavailableError,
    Image,
    Registry,
    busybox_image,
    start_dockerd,
    start_registry,
    write_oci_layout,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "trustyard_only(reason): needs trustyard itself; skipped when TRUSTYARD_TEST_TARGET=distribution",
    )
    config.addinivalue_line(
        "markers",
        "distribution_bug(reason): a known bug of CNCF Distribution 2.8.2; xfail (not strict) on that target",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if TARGET == "trustyard":
        return
    for item in items:
        if (marker := item.get_closest_marker("trustyard_only")) is not None:
            reason = marker.kwargs.get("reason", "needs trustyard")
            item.add_marker(pytest.mark.skip(reason=f"TRUSTYARD_TEST_TARGET={TARGET}: {reason}"))
        if (marker := item.get_closest_marker("distribution_bug")) is not None:
            reason = marker.kwargs.get("reason", "known Distribution bug")
            item.add_marker(pytest.mark.xfail(reason=f"TRUSTYARD_TEST_TARGET={TARGET}: {reason}", strict=False))


@pytest.fixture(scope="session")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clients]:
    """skopeo, podman and buildah confined to a temporary directory."""
    tools = Clients(tmp_path_factory.mktemp("clients"))
    try:
        yield tools
    finally:
        tools.close()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory, clients: Clients) -> Iterator[Registry]:
    """The registry under test (TLS and login for trustyard), shared by the session; the clients are logged in.
    Every test uses its own repositories."""
    running = start_registry(TARGET, tmp_path_factory.mktemp("registry") / "data")
    try:
        clients.login(running)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory, clients: Clients) -> Iterator[Docker]:
    """A dockerd of our own (its own root, socket and pidfile), never the machine's."""
    try:
        docker = start_dockerd(tmp_path_factory.mktemp("dockerd"), clients.env)
    except DockerUnavailableError as exc:
        pytest.skip(f"dockerd cannot run on this machine: {exc}")
    try:
        yield docker
    finally:
        docker.stop()


@pytest.fixture(scope="session")
def dockerd(docker_engine: Docker, registry: Registry) -> Docker:
    """The dockerd, trusting the registry's CA (certs.d) and logged in to it."""
    docker_engine.login(registry)
    return docker_engine


@pytest.fixture
def repo(request: pytest.FixtureRequest) -> str:
    """A repository name no other test uses: `e2e/<test name>-<random>`."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    return f"e2e/{name}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def busybox() -> Image:
    return busybox_image()


@pytest.fixture(scope="session")
def busybox_layout(tmp_path_factory: pytest.TempPathFactory, busybox: Image) -> Path:
    """An OCI layout with the busybox image under the tag `latest` (`oci:PATH:latest`)."""
    return write_oci_layout(tmp_path_factory.mktemp("busybox-oci"), {"latest": busybox})

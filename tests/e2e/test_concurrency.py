"""Eight skopeo pushes at once: the same layer to many repositories and to one, and different images."""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TypeVar

import pytest

from . import (
    Clients,
    Image,
    Registry,
    layer_tar,
    local_blobs_ok,
    oci_layout_descriptor,
    random_image,
    write_oci_layout,
)

pytestmark = pytest.mark.clients

PARALLEL = 8
T = TypeVar("T")


def all_at_once(tasks: list[Callable[[], T]]) -> list[T]:
    """Run the tasks on PARALLEL threads (each one a client process) and re-raise the first failure."""
    with ThreadPoolExecutor(PARALLEL) as pool:
        futures = [pool.submit(task) for task in tasks]
        return [future.result() for future in futures]


def pull_and_check(clients: Clients, registry: Registry, repo: str, tag: str, image: Image, out: Path) -> None:
    assert clients.inspect_raw(registry.ref(repo, tag)) == image.manifest.data
    clients.copy(registry.ref(repo, tag), f"oci:{out}:{tag}")
    assert oci_layout_descriptor(out, tag)["digest"] == image.digest
    local_blobs_ok(out, image.blobs())


@pytest.fixture(scope="module")
def shared_layer() -> bytes:
    """A 4 MiB layer: large enough for the concurrent uploads of it to overlap."""
    return layer_tar({"shared/blob.bin": random.Random(4242).randbytes(4 << 20)})


def test_same_layer_to_different_repositories(
    registry: Registry, clients: Clients, tmp_path: Path, repo: str, shared_layer: bytes
) -> None:
    images = [random_image(seed=100 + i, size=1024, shared=[shared_layer]) for i in range(PARALLEL)]
    layout = write_oci_layout(tmp_path / "oci", {f"t{i}": image for i, image in enumerate(images)})
    repos = [f"{repo}/r{i}" for i in range(PARALLEL)]

    digests = all_at_once(
        [partial(clients.push, layout, f"t{i}", registry.ref(repos[i], "latest")) for i in range(PARALLEL)]
    )
    assert digests == [image.digest for image in images]
    for i, image in enumerate(images):
        pull_and_check(clients, registry, repos[i], "latest", image, tmp_path / f"pull-{i}")


@pytest.mark.distribution_bug(
    reason="its filesystem driver rewrites _layers/.../link in place, so a concurrent HEAD of the blob "
    "can read an empty link and answer 500 'invalid checksum digest format'"
)
def test_same_image_to_one_repository(
    registry: Registry, clients: Clients, tmp_path: Path, repo: str, shared_layer: bytes
) -> None:
    image = random_image(seed=200, size=1024, shared=[shared_layer])
    layout = write_oci_layout(tmp_path / "oci", {"latest": image})
    tags = [f"tag-{i}" for i in range(PARALLEL)]

    digests = all_at_once([partial(clients.push, layout, "latest", registry.ref(repo, tag)) for tag in tags])
    assert digests == [image.digest] * PARALLEL
    assert clients.list_tags(registry.ref(repo)) == sorted(tags)
    for tag in tags:
        assert clients.inspect_raw(registry.ref(repo, tag)) == image.manifest.data
    pull_and_check(clients, registry, repo, tags[-1], image, tmp_path / "pull")


def test_different_images_to_one_repository(registry: Registry, clients: Clients, tmp_path: Path, repo: str) -> None:
    images = [random_image(seed=300 + i, size=512 * 1024) for i in range(PARALLEL)]
    layout = write_oci_layout(tmp_path / "oci", {f"t{i}": image for i, image in enumerate(images)})

    digests = all_at_once(
        [partial(clients.push, layout, f"t{i}", registry.ref(repo, f"t{i}")) for i in range(PARALLEL)]
    )
    assert digests == [image.digest for image in images]
    assert clients.list_tags(registry.ref(repo)) == sorted(f"t{i}" for i in range(PARALLEL))
    for i, image in enumerate(images):
        pull_and_check(clients, registry, repo, f"t{i}", image, tmp_path / f"pull-{i}")

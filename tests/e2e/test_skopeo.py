"""skopeo against the registry: push, pull, inspect, list-tags, delete, sync, multi-arch round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from . import (
    Clients,
    Image,
    Registry,
    busybox_image,
    local_blobs_ok,
    multiarch_index,
    oci_layout_blob,
    oci_layout_descriptor,
    sha256_digest,
    write_oci_layout,
)

pytestmark = pytest.mark.clients


def test_push_then_pull_to_oci_layout_and_dir(
    registry: Registry, clients: Clients, busybox: Image, busybox_layout: Path, repo: str, tmp_path: Path
) -> None:
    pushed = clients.push(busybox_layout, "latest", registry.ref(repo, "v1"))
    assert pushed == busybox.digest

    # Pull into an OCI layout: same manifest digest, same bytes for every blob.
    clients.copy(registry.ref(repo, "v1"), f"oci:{tmp_path / 'oci'}:v1")
    assert oci_layout_descriptor(tmp_path / "oci", "v1")["digest"] == busybox.digest
    local_blobs_ok(tmp_path / "oci", busybox.blobs())

    # Pull by digest into a dir: the manifest is stored as served, blobs are named by their hex digest.
    clients.copy(registry.ref(repo, busybox.digest), f"dir:{tmp_path / 'dir'}")
    assert (tmp_path / "dir" / "manifest.json").read_bytes() == busybox.manifest.data
    for blob in (busybox.config, *busybox.layers):
        assert (tmp_path / "dir" / blob.digest.removeprefix("sha256:")).read_bytes() == blob.data


def test_inspect_raw_manifest_and_config(
    registry: Registry, clients: Clients, busybox: Image, busybox_layout: Path, repo: str
) -> None:
    clients.push(busybox_layout, "latest", registry.ref(repo, "latest"))

    assert clients.inspect_raw(registry.ref(repo, "latest")) == busybox.manifest.data
    assert clients.inspect_raw(registry.ref(repo, busybox.digest)) == busybox.manifest.data
    assert clients.inspect_raw(registry.ref(repo, "latest"), config=True) == busybox.config.data

    info = json.loads(clients.inspect(registry.ref(repo, "latest")).stdout)
    assert info["Digest"] == busybox.digest
    assert info["RepoTags"] == ["latest"]
    assert info["Architecture"] == "amd64"
    assert info["Layers"] == [layer.digest for layer in busybox.layers]


def test_list_tags(registry: Registry, clients: Clients, busybox_layout: Path, repo: str) -> None:
    tags = ["1.0", "1.1", "latest", "stable_2", "v2-rc.1"]
    for tag in tags:
        clients.push(busybox_layout, "latest", registry.ref(repo, tag))
    assert clients.list_tags(registry.ref(repo)) == sorted(tags)


def test_delete_by_tag_and_by_digest(registry: Registry, clients: Clients, tmp_path: Path, repo: str) -> None:
    first, second = busybox_image("delete-1"), busybox_image("delete-2")
    layout = write_oci_layout(tmp_path / "oci", {"first": first, "second": second})
    clients.push(layout, "first", registry.ref(repo, "first"))
    clients.push(layout, "second", registry.ref(repo, "second"))

    # `skopeo delete` of a tag deletes the manifest that the tag points to.
    clients.skopeo("delete", *registry.tls_flags(), registry.ref(repo, "first"))
    assert clients.inspect(registry.ref(repo, "first"), check=False).returncode != 0
    assert clients.inspect(registry.ref(repo, first.digest), check=False).returncode != 0
    assert clients.copy(registry.ref(repo, first.digest), f"dir:{tmp_path / 'gone'}", check=False).returncode != 0

    clients.skopeo("delete", *registry.tls_flags(), registry.ref(repo, second.digest))
    assert clients.inspect(registry.ref(repo, "second"), check=False).returncode != 0
    assert clients.inspect(registry.ref(repo, second.digest), check=False).returncode != 0


def test_sync_repository_to_dir(registry: Registry, clients: Clients, tmp_path: Path, repo: str) -> None:
    images = {"a": busybox_image("sync-a"), "b": busybox_image("sync-b"), "c": busybox_image("sync-c")}
    layout = write_oci_layout(tmp_path / "oci", images)
    for tag in images:
        clients.push(layout, tag, registry.ref(repo, tag))

    out = tmp_path / "sync"
    clients.skopeo(
        "sync", "--src", "docker", "--dest", "dir", *registry.tls_flags("src-"), f"{registry.host}/{repo}", out
    )

    name = repo.rsplit("/", 1)[-1]  # without --scoped, sync names each image after the last path component
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{name}:{tag}" for tag in images)
    for tag, image in images.items():
        image_dir = out / f"{name}:{tag}"
        assert sha256_digest((image_dir / "manifest.json").read_bytes()) == image.digest
        assert (image_dir / image.config.digest.removeprefix("sha256:")).read_bytes() == image.config.data


def test_multiarch_index_round_trip(registry: Registry, clients: Clients, tmp_path: Path, repo: str) -> None:
    index = multiarch_index(repo)
    layout = write_oci_layout(tmp_path / "oci", {"multi": index})

    pushed = clients.push(layout, "multi", registry.ref(repo, "multi"), "--all", "--preserve-digests")
    assert pushed == index.digest
    assert clients.inspect_raw(registry.ref(repo, "multi")) == index.index.data
    for image in index.images:
        assert clients.inspect_raw(registry.ref(repo, image.digest)) == image.manifest.data

    back = tmp_path / "back"
    clients.copy(registry.ref(repo, "multi"), f"oci:{back}:multi", "--all", "--preserve-digests")
    assert oci_layout_descriptor(back, "multi")["digest"] == index.digest
    assert oci_layout_blob(back, index.digest) == index.index.data
    local_blobs_ok(back, index.blobs())

    # Without --all a client picks the image of its platform from the index.
    arm64 = tmp_path / "arm64"
    clients.copy(registry.ref(repo, "multi"), f"oci:{arm64}:one", "--override-arch", "arm64")
    assert oci_layout_descriptor(arm64, "one")["digest"] == index.images[1].digest

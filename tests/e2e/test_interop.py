"""Storage written by trustyard is served by CNCF Distribution, and the other way round (after a reindex).

Both keep blobs in Distribution's v2 layout (`DATA/storage/docker/registry/v2/...`): a registry's data outlives
the registry, and an existing Distribution (or DTR, Harbor) root can be adopted.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest

from . import (
    Clients,
    Image,
    ImageIndex,
    Registry,
    busybox_image,
    local_blobs_ok,
    multiarch_index,
    oci_layout_descriptor,
    run,
    start_registry,
    trustyard_bin,
    write_oci_layout,
)

pytestmark = [
    pytest.mark.clients,
    pytest.mark.trustyard_only(reason="hands storage between trustyard and Distribution"),
]

REPO = "interop/app"
OTHER_REPO = "interop/tools/multi"


def images() -> dict[str, Image | ImageIndex]:
    return {"1.0": busybox_image("interop-1.0"), "latest": busybox_image("interop-latest"), "multi": multiarch_index()}


def push_all(writer: Registry, clients: Clients, tmp_path: Path, tagged: Mapping[str, Image | ImageIndex]) -> None:
    layout = write_oci_layout(tmp_path / "oci", tagged)
    for tag, image in tagged.items():
        if isinstance(image, ImageIndex):
            clients.push(layout, tag, writer.ref(OTHER_REPO, tag), "--all", "--preserve-digests")
        else:
            clients.push(layout, tag, writer.ref(REPO, tag))


def check_all(reader: Registry, clients: Clients, tmp_path: Path, tagged: Mapping[str, Image | ImageIndex]) -> None:
    """Every tag lists, serves the same manifest bytes, and pulls with every blob intact."""
    plain = sorted(tag for tag, image in tagged.items() if isinstance(image, Image))
    assert clients.list_tags(reader.ref(REPO)) == plain
    assert clients.list_tags(reader.ref(OTHER_REPO)) == ["multi"]
    for tag, image in tagged.items():
        repo, extra = (OTHER_REPO, ["--all"]) if isinstance(image, ImageIndex) else (REPO, [])
        top = image.index if isinstance(image, ImageIndex) else image.manifest
        assert clients.inspect_raw(reader.ref(repo, tag)) == top.data
        assert clients.inspect_raw(reader.ref(repo, image.digest)) == top.data
        out = tmp_path / f"pull-{reader.kind}-{tag}"
        clients.copy(reader.ref(repo, tag), f"oci:{out}:{tag}", *extra, "--preserve-digests")
        assert oci_layout_descriptor(out, tag)["digest"] == image.digest
        local_blobs_ok(out, image.blobs())


def reindex(data_dir: Path) -> None:
    run([trustyard_bin(), "storage", "reindex", "--data-dir", data_dir], env=os.environ)


def test_trustyard_storage_served_by_distribution(clients: Clients, tmp_path: Path) -> None:
    tagged = images()
    data = tmp_path / "data"
    writer = start_registry("trustyard", data)
    try:
        clients.login(writer)
        push_all(writer, clients, tmp_path, tagged)
        check_all(writer, clients, tmp_path, tagged)
    finally:
        writer.stop()

    assert (writer.storage_root / "docker" / "registry" / "v2" / "repositories" / REPO).is_dir()
    reader = start_registry("distribution", data)  # rootdirectory: DATA/storage
    try:
        clients.login(reader)
        check_all(reader, clients, tmp_path, tagged)
    finally:
        reader.stop()


def test_distribution_storage_adopted_by_trustyard(clients: Clients, tmp_path: Path) -> None:
    tagged = images()
    written = tmp_path / "distribution"
    writer = start_registry("distribution", written)
    try:
        clients.login(writer)
        push_all(writer, clients, tmp_path, tagged)
    finally:
        writer.stop()

    # A new trustyard data dir whose storage is a copy of Distribution's root; its SQL index starts empty.
    data = tmp_path / "data"
    shutil.copytree(written / "storage", data / "storage", symlinks=True)
    reindex(data)
    reader = start_registry("trustyard", data)
    try:
        clients.login(reader)
        check_all(reader, clients, tmp_path, tagged)
    finally:
        reader.stop()

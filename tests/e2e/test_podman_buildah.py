"""buildah builds and pushes, podman pulls and pushes: each with its own vfs storage in a temporary directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from . import BUSYBOX, Clients, Registry, sha256_digest

pytestmark = pytest.mark.clients


def test_buildah_push_podman_pull_and_push(registry: Registry, clients: Clients, tmp_path: Path, repo: str) -> None:
    built = f"localhost/{repo}:built"
    pushed_ref = f"{registry.host}/{repo}:v1"

    # buildah: from scratch + busybox + config, committed as an OCI image and pushed.
    container = clients.buildah("from", "scratch").stdout.strip()
    clients.buildah("copy", container, BUSYBOX, "/bin/busybox")
    clients.buildah("config", "--cmd", '["/bin/busybox", "true"]', "--label", f"repo={repo}", container)
    clients.buildah("commit", "--format", "oci", "--rm", container, built)
    digest_file = tmp_path / "buildah.digest"
    clients.buildah("push", *registry.tls_flags(), "--digestfile", digest_file, built, f"docker://{pushed_ref}")
    pushed = digest_file.read_text().strip()
    assert pushed.startswith("sha256:")

    manifest = clients.inspect_raw(f"docker://{pushed_ref}")
    assert sha256_digest(manifest) == pushed
    config = json.loads(clients.inspect_raw(f"docker://{pushed_ref}", config=True))
    assert config["config"]["Labels"]["repo"] == repo

    # podman (its own storage, so this is a real pull): same digest as buildah pushed.
    clients.podman("pull", *registry.tls_flags(), pushed_ref)
    inspect = json.loads(clients.podman("image", "inspect", pushed_ref).stdout)[0]
    assert inspect["Digest"] == pushed
    assert f"{registry.host}/{repo}@{pushed}" in inspect["RepoDigests"]

    # podman push of a retag: the same manifest under another repository and tag.
    retag = f"{registry.host}/{repo}/copy:v2"
    clients.podman("tag", pushed_ref, retag)
    digest_file = tmp_path / "podman.digest"
    clients.podman("push", *registry.tls_flags(), "--digestfile", digest_file, retag)
    repushed = digest_file.read_text().strip()
    assert sha256_digest(clients.inspect_raw(f"docker://{retag}")) == repushed

    # A fresh podman storage pulls the retag by digest and sees the same image id (config digest).
    clients.podman("pull", *registry.tls_flags(), f"{registry.host}/{repo}/copy@{repushed}", store="podman2")
    again = json.loads(
        clients.podman("image", "inspect", f"{registry.host}/{repo}/copy@{repushed}", store="podman2").stdout
    )
    assert again[0]["Id"] == inspect["Id"]
    assert again[0]["Digest"] == repushed


def test_podman_pull_of_skopeo_push(registry: Registry, clients: Clients, busybox_layout: Path, repo: str) -> None:
    digest = clients.push(busybox_layout, "latest", registry.ref(repo, "latest"))
    ref = f"{registry.host}/{repo}:latest"
    clients.podman("pull", *registry.tls_flags(), ref, store="podman-skopeo")
    inspect = json.loads(clients.podman("image", "inspect", ref, store="podman-skopeo").stdout)[0]
    assert inspect["Digest"] == digest
    assert inspect["Architecture"] == "amd64"

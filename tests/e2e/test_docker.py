"""The Docker engine (a private dockerd) builds, pushes and pulls; two pushes sharing a layer run at once."""

from __future__ import annotations

import json
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from . import ADMIN, BUSYBOX, Clients, Docker, Registry, run, sha256_digest

pytestmark = pytest.mark.clients

# `docker push` ends with "TAG: digest: sha256:... size: N"; `docker pull` prints "Digest: sha256:...".
PUSHED = re.compile(r"digest: (sha256:[0-9a-f]{64}) size: \d+")
PULLED = re.compile(r"Digest: (sha256:[0-9a-f]{64})")


def build(docker: Docker, context: Path, tag: str, dockerfile: str, files: dict[str, Path | bytes]) -> None:
    """`docker build` with the classic builder: FROM scratch and COPY need no network and no container run."""
    context.mkdir(parents=True)
    (context / "Dockerfile").write_text(dockerfile)
    for name, source in files.items():
        if isinstance(source, Path):
            shutil.copy(source, context / name)
        else:
            (context / name).write_bytes(source)
    docker("build", "--quiet", "--tag", tag, context, DOCKER_BUILDKIT="0")


def push(docker: Docker, tag: str, **env: str) -> str:
    out = docker("push", tag, **env).stdout
    found = PUSHED.search(out)
    assert found, f"docker push {tag}: no digest in its output:\n{out}"
    return found.group(1)


def repo_digests(docker: Docker, image: str) -> list[str]:
    digests: list[str] = json.loads(docker("image", "inspect", "--format", "{{json .RepoDigests}}", image).stdout)
    return digests


def test_build_push_rmi_pull(dockerd: Docker, registry: Registry, clients: Clients, tmp_path: Path, repo: str) -> None:
    tag = f"{registry.host}/{repo}:v1"
    build(
        dockerd,
        tmp_path / "ctx",
        tag,
        'FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox", "true"]\n',
        {"busybox": BUSYBOX},
    )
    pushed = push(dockerd, tag)
    assert sha256_digest(clients.inspect_raw(f"docker://{tag}")) == pushed

    dockerd("rmi", tag)
    assert dockerd("image", "inspect", tag, check=False).returncode != 0

    out = dockerd("pull", tag).stdout
    pulled = PULLED.search(out)
    assert pulled, f"docker pull {tag}: no digest in its output:\n{out}"
    assert pulled.group(1) == pushed
    assert repo_digests(dockerd, tag) == [f"{registry.host}/{repo}@{pushed}"]

    # And by digest.
    dockerd("rmi", tag)
    dockerd("pull", f"{registry.host}/{repo}@{pushed}")
    assert repo_digests(dockerd, f"{registry.host}/{repo}@{pushed}") == [f"{registry.host}/{repo}@{pushed}"]


def test_docker_import_push_and_skopeo_pull(
    dockerd: Docker, registry: Registry, clients: Clients, tmp_path: Path, repo: str
) -> None:
    tag = f"{registry.host}/{repo}:imported"
    rootfs = tmp_path / "rootfs.tar"
    shutil.make_archive(str(rootfs.with_suffix("")), "tar", root_dir=BUSYBOX.parent.parent, base_dir="bin/busybox")
    dockerd("import", "--change", 'CMD ["/bin/busybox"]', rootfs, tag)
    pushed = push(dockerd, tag)

    # skopeo reads what docker pushed (Docker schema 2) byte for byte.
    out = tmp_path / "dir"
    clients.copy(f"docker://{tag}", f"dir:{out}")
    assert sha256_digest((out / "manifest.json").read_bytes()) == pushed
    config = json.loads(clients.inspect_raw(f"docker://{tag}", config=True))
    assert config["config"]["Cmd"] == ["/bin/busybox"]


def test_concurrent_pushes_sharing_a_layer(
    dockerd: Docker, registry: Registry, clients: Clients, tmp_path: Path, repo: str
) -> None:
    base = f"{registry.host}/{repo}/base:1"
    build(dockerd, tmp_path / "base", base, "FROM scratch\nCOPY busybox /bin/busybox\n", {"busybox": BUSYBOX})
    tags = [f"{registry.host}/{repo}:one", f"{registry.host}/{repo}:two"]
    for i, tag in enumerate(tags):
        payload = f"image {i}\n".encode() * 1000
        build(dockerd, tmp_path / f"ctx{i}", tag, f"FROM {base}\nCOPY payload /payload\n", {"payload": payload})

    with ThreadPoolExecutor(len(tags)) as pool:
        digests = list(pool.map(lambda tag: push(dockerd, tag), tags))

    layers: list[list[str]] = []
    for tag, digest in zip(tags, digests, strict=True):
        manifest = clients.inspect_raw(f"docker://{tag}")
        assert sha256_digest(manifest) == digest
        layers.append([layer["digest"] for layer in json.loads(manifest)["layers"]])
    assert layers[0][0] == layers[1][0], "both images start with the busybox layer"
    assert layers[0][1] != layers[1][1]

    # Both pull back after removing everything local.
    dockerd("rmi", *tags, base)
    for tag, digest in zip(tags, digests, strict=True):
        dockerd("pull", tag)
        assert repo_digests(dockerd, tag) == [f"{registry.host}/{repo}@{digest}"]


@pytest.mark.trustyard_only(reason="trustyard's own login flow")
def test_docker_then_podman_then_skopeo_share_one_home(
    docker_engine: Docker, registry: Registry, clients: Clients, tmp_path: Path, repo: str
) -> None:
    """The README's order on one machine: docker login and push, then podman login and pull, then skopeo with
    docker's auth file. docker asks for a refresh token at login and would keep it in ~/.docker/config.json
    as an identity token, which podman and skopeo refuse ("currently logged in, auth file contains an
    Identity token"); trustyard hands none out unless told to, so one HOME serves every client."""
    assert registry.password is not None
    home, runtime = tmp_path / "home", tmp_path / "run"
    home.mkdir()
    runtime.mkdir(mode=0o700)
    env = {key: value for key, value in clients.env.items() if key not in ("REGISTRY_AUTH_FILE", "DOCKER_CONFIG")}
    env |= {"HOME": str(home), "XDG_RUNTIME_DIR": str(runtime)}
    docker_config = home / ".docker" / "config.json"

    docker_env = {"HOME": str(home), "DOCKER_CONFIG": str(home / ".docker")}
    docker_engine.login(registry, ADMIN, registry.password, **docker_env)
    assert "identitytoken" not in docker_config.read_text()
    tag = f"{registry.host}/{repo}:shared-home"
    rootfs = tmp_path / "rootfs.tar"
    shutil.make_archive(str(rootfs.with_suffix("")), "tar", root_dir=BUSYBOX.parent.parent, base_dir="bin/busybox")
    docker_engine("import", rootfs, tag)
    pushed = push(docker_engine, tag, **docker_env)

    trust, store = registry.tls_flags(), "podman-shared-home"
    clients.podman("login", *trust, "-u", ADMIN, "-p", registry.password, registry.host, store=store, env=env)
    clients.podman("pull", *trust, tag, store=store, env=env)

    inspected = run(
        ["skopeo", "inspect", "--raw", *registry.tls_flags(), "--authfile", docker_config, f"docker://{tag}"],
        env=env,
    )
    assert sha256_digest(inspected.stdout.encode()) == pushed

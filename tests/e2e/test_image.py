"""The container image (Containerfile, scripts/build-image): built with buildah from Debian packages, run with
podman as an operator runs it, and pushed into the trustyard it runs.

The image is built into a container storage of this test's own (vfs, under the clients' temporary home); the
Debian rootfs is cached in ~/.cache/trustyard by scripts/build-image, so only the first run on a machine pays
for mmdebstrap. There is no bridge networking on the test machines: the containers share the host's network
(`--network host`) and listen on a free loopback port through TRUSTYARD_LISTEN. Their cgroups are a v1/v2
hybrid, which crun refuses ("cgroups in hybrid mode not supported"), so buildah and podman use runc here; and
podman's default rlimits exceed what root may set here (no CAP_SYS_RESOURCE), so the containers get smaller
ones. Neither is needed on an ordinary host.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from . import (
    ADMIN,
    REPO_ROOT,
    Clients,
    Registry,
    Server,
    create_app_token,
    free_port,
    oci_layout_descriptor,
    run,
    wait_until,
)

pytestmark = [pytest.mark.clients, pytest.mark.trustyard_only(reason="builds and runs trustyard's own image")]

#: Where scripts/build-image caches the Debian rootfs (its TRUSTYARD_IMAGE_CACHE, same default).
BASE_CACHE = Path(
    os.environ.get("TRUSTYARD_IMAGE_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "trustyard"
)
STORE = "image"  # the container storage (Clients.storage_flags) the image is built into and run from
IMAGE = "localhost/trustyard:e2e"
BUILD_TIMEOUT = 1800.0  # the first build on a machine: mmdebstrap, then pip downloading every wheel
START_TIMEOUT = 120.0  # migrations, the CA and the admin's argon2 hash on a busy two-core machine
UID = "999"  # the image's trustyard user (Containerfile)
RUNTIME = "runc"
ULIMITS = ["--ulimit", "nofile=16384:16384", "--ulimit", "nproc=8192:8192"]


@pytest.fixture(scope="module")
def image(clients: Clients) -> str:
    """scripts/build-image run as an operator runs it, into this test's container storage."""
    root = clients.home / STORE
    storage = clients.home / f"{STORE}-storage.conf"
    storage.write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{root / "root"}"\nrunroot = "{clients.runroots / STORE}"\n'
    )
    cached = list(BASE_CACHE.glob("debian-bookworm-*.tar"))
    built = run(
        [REPO_ROOT / "scripts" / "build-image", IMAGE],
        # No intermediate layers: this storage is thrown away, and every layer is a full copy on vfs.
        env={
            **clients.env,
            "CONTAINERS_STORAGE_CONF": str(storage),
            "BUILDAH_RUNTIME": RUNTIME,
            "BUILDAH_LAYERS": "false",
        },
        timeout=BUILD_TIMEOUT,
    )
    assert built.stdout.strip().splitlines()[-1] == IMAGE
    # The suite stays fast: the rootfs is cached, and made again only when its packages or mirrors change.
    made = set(BASE_CACHE.glob("debian-bookworm-*.tar")) - set(cached)
    if "building the Debian rootfs" in built.stderr:
        assert made, f"scripts/build-image made a rootfs but did not cache it in {BASE_CACHE}"
    else:
        assert "importing" in built.stderr, built.stderr
        assert not made
    return IMAGE


class Container:
    """`podman run` of the image in the foreground (its output in `log`), on a named volume."""

    def __init__(self, clients: Clients, volume: str, log: Path, secret: str | None = None):
        self.clients = clients
        self.name = f"trustyard-{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        podman = [
            "podman",
            *clients.storage_flags(STORE),
            *("--runtime", RUNTIME, "--events-backend", "none", "--cgroup-manager", "cgroupfs"),
        ]
        self.server = Server(
            [
                *podman,
                "run",
                "--rm",
                *ULIMITS,
                "--name",
                self.name,
                "--network",
                "host",
                "--log-driver",
                "k8s-file",
                "--volume",
                f"{volume}:/var/lib/trustyard",
                "--env",
                f"TRUSTYARD_LISTEN=127.0.0.1:{self.port}",
                "--env",
                "TRUSTYARD_WORKERS=2",
                IMAGE,
            ],
            log,
            env=clients.env,
        )
        self.cert_dir = log.parent / f"{self.name}-certs"
        self.registry = Registry("trustyard", log.parent, self.port, self.server, self.cert_dir)
        self.registry.secret = secret

    def podman(self, *args: str) -> str:
        return self.clients.podman(*args, store=STORE).stdout

    def logs(self) -> str:
        logs = self.clients.podman("logs", self.name, store=STORE)  # the container's stdout, then its stderr
        return logs.stdout + logs.stderr

    def wait_ready(self) -> bytes:
        """Wait until the registry answers; return the CA it serves at /ca (fetched as users do, unverified)."""
        url, ca_file = self.registry.url, self.cert_dir / "ca.crt"
        self.cert_dir.mkdir(exist_ok=True)

        def ready() -> bool:
            try:
                ca = httpx.get(f"{url}/ca", timeout=2.0, verify=False)
                if ca.status_code != 200:
                    return False
                ca_file.write_bytes(ca.content)
                context = ssl.create_default_context(cafile=ca_file)
                return httpx.get(f"{url}/v2/", timeout=2.0, verify=context).status_code == 401
            except httpx.TransportError:
                return False

        wait_until(ready, self.server, f"the trustyard container {self.name}", timeout=START_TIMEOUT)
        return ca_file.read_bytes()

    def stop(self) -> None:
        self.server.stop(grace=30)


@pytest.fixture
def volume(clients: Clients) -> Iterator[str]:
    name = f"trustyard-data-{uuid.uuid4().hex[:8]}"
    clients.podman("volume", "create", name, store=STORE)
    try:
        yield name
    finally:
        clients.podman("volume", "rm", "--force", name, store=STORE)


def ca_fingerprint(pem: bytes) -> str:
    der = ssl.PEM_cert_to_DER_cert(pem.decode())
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def test_the_image_serves_holds_itself_and_keeps_its_data_on_the_volume(
    clients: Clients, image: str, volume: str, busybox_layout: Path, tmp_path: Path
) -> None:
    built = json.loads(clients.podman("image", "inspect", image, store=STORE).stdout)[0]
    config = built["Config"]
    assert config["User"] == f"{UID}:{UID}"
    assert "/var/lib/trustyard" in config["Volumes"]
    assert "5000/tcp" in config["ExposedPorts"]
    assert "TRUSTYARD_LISTEN=0.0.0.0:5000" in config["Env"]  # overridden below: host networking, loopback only

    first = Container(clients, volume, tmp_path / "first.log")
    try:
        ca = first.wait_ready()
        # Not root, and the CLI works in the container as the same user, on the same data directory.
        assert first.podman("exec", first.name, "id", "-u").strip() == UID
        assert "SHA-256" in first.podman("exec", first.name, "trustyard", "ca")

        # What the first start prints, read as an operator reads it: `podman logs`.
        logs = first.logs()
        password = re.search(r"created user admin with password: (\S+)", logs)
        assert password, f"no admin password in the container's logs:\n{logs}"
        assert f"CA SHA-256 fingerprint: {ca_fingerprint(ca)}" in logs

        registry = first.registry
        registry.secret = create_app_token(registry, ADMIN, password.group(1), "image-e2e")
        clients.login(registry)

        # Push and pull an image through it.
        pushed = clients.push(busybox_layout, "latest", registry.ref("e2e/busybox", "1"))
        clients.copy(registry.ref("e2e/busybox", "1"), f"oci:{tmp_path / 'pulled'}:1")
        assert oci_layout_descriptor(tmp_path / "pulled", "1")["digest"] == pushed

        # The trustyard image pushed into the trustyard it runs, then pulled into another storage.
        ref = f"{registry.host}/{ADMIN}/trustyard:e2e"
        digest_file = tmp_path / "trustyard.digest"
        clients.podman("push", *registry.tls_flags(), "--digestfile", str(digest_file), image, ref, store=STORE)
        self_digest = digest_file.read_text().strip()
        clients.podman("pull", *registry.tls_flags(), f"{ref}", store="image-pull")
        pulled = json.loads(clients.podman("image", "inspect", ref, store="image-pull").stdout)[0]
        assert pulled["Digest"] == self_digest
        assert pulled["Id"] == built["Id"]  # the same config, so the same image
    finally:
        first.stop()
    assert not first.server.alive()
    assert first.server.proc.returncode == 0, f"serve did not stop cleanly on SIGTERM:\n{first.server.log_tail()}"

    # A new container on the same volume: the same CA, admin and app token, and the pushed images.
    second = Container(clients, volume, tmp_path / "second.log", secret=registry.secret)
    try:
        assert second.wait_ready() == ca
        assert "created user admin" not in second.logs()
        clients.login(second.registry)
        again = f"{second.registry.host}/{ADMIN}/trustyard:e2e"
        manifest = clients.inspect_raw(f"docker://{again}")
        assert "sha256:" + hashlib.sha256(manifest).hexdigest() == self_digest
        busybox = clients.inspect_raw(second.registry.ref("e2e/busybox", "1"))
        assert "sha256:" + hashlib.sha256(busybox).hexdigest() == pushed
    finally:
        second.stop()

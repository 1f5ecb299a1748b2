"""containerd's own resolver (ctr `--hosts-dir`, the `config_path` nerdctl and the kubelet use) trusting the
registry's CA through the hosts.toml docs/security.md shows, against a containerd of our own.

The form documented before (`ca = "/path/ca.crt"` alone) made ctr 1.6 log "invalid `host` tree" and fall back
to plain HTTP; it is checked to fail here, so the test fails if the documented file stops mattering."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import ADMIN, Clients, Image, Registry, Server, busybox_image, run, wait_until, write_oci_layout

pytestmark = [pytest.mark.clients, pytest.mark.trustyard_only(reason="TLS and trustyard's CA")]


@pytest.fixture
def ctr(tmp_path: Path) -> Iterator[list[str]]:
    """`ctr` bound to a containerd of our own (its own root, state and socket), never the machine's."""
    containerd = shutil.which("containerd")
    if containerd is None or shutil.which("ctr") is None:
        pytest.skip("containerd is not installed (Debian: containerd)")
    if os.geteuid() != 0:
        pytest.skip("containerd needs root")
    home = Path(os.environ.get("TMPDIR", "/tmp")) / f"ctd-{os.urandom(4).hex()}"  # short: socket path limits
    home.mkdir()
    config = home / "config.toml"
    config.write_text(
        f'version = 2\nroot = "{home / "root"}"\nstate = "{home / "state"}"\n'
        f'[grpc]\n  address = "{home / "sock"}"\n'
        '[plugins."io.containerd.grpc.v1.cri"]\n  disable_apparmor = true\n'
    )
    server = Server([containerd, "--config", config], tmp_path / "containerd.log")
    command = ["ctr", "--address", str(home / "sock")]
    try:
        wait_until(lambda: run([*command, "version"], check=False).returncode == 0, server, "containerd")
        yield command
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


def hosts_dir(root: Path, registry: Registry, hosts_toml: str) -> Path:
    """/etc/containerd/certs.d as the docs lay it out: HOST:PORT/hosts.toml beside the CA."""
    assert registry.ca is not None
    directory = root / registry.host
    directory.mkdir(parents=True)
    shutil.copy(registry.ca, directory / "ca.crt")
    text = hosts_toml.replace("HOST:5000", registry.host).replace("/etc/containerd/certs.d", str(root))
    (directory / "hosts.toml").write_text(text)
    return root


DOCUMENTED = """\
server = "https://HOST:5000"

[host."https://HOST:5000"]
  capabilities = ["pull", "resolve", "push"]
  ca = "/etc/containerd/certs.d/HOST:5000/ca.crt"
"""


def test_ctr_pulls_through_the_documented_hosts_toml(
    registry: Registry, clients: Clients, ctr: list[str], repo: str, tmp_path: Path
) -> None:
    image: Image = busybox_image("containerd")
    layout = write_oci_layout(tmp_path / "layout", {"v1": image})
    clients.push(layout, "v1", registry.ref(repo, "v1"))
    ref = f"{registry.host}/{repo}:v1"
    user = f"{ADMIN}:{registry.secret}"

    old = hosts_dir(tmp_path / "old", registry, 'ca = "/etc/containerd/certs.d/HOST:5000/ca.crt"\n')
    refused = run([*ctr, "images", "pull", "--hosts-dir", old, "--user", user, ref], check=False)
    assert refused.returncode != 0
    assert "invalid `host` tree" in refused.stderr

    documented = hosts_dir(tmp_path / "certs.d", registry, DOCUMENTED)
    run([*ctr, "images", "pull", "--hosts-dir", documented, "--user", user, ref])
    listed = run([*ctr, "images", "ls", "--quiet"]).stdout.split()
    assert ref in listed
    check = run([*ctr, "images", "check"]).stdout
    assert image.digest in check
    assert "complete" in check

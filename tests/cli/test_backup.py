"""``trustyard backup`` while the registry serves, then the operator's restore (docs/operations.md): wipe the
data directory, copy the backup into a fresh one, serve it, and pull every image back with skopeo, checking
every digest; the old CA, app token and admin password still work, so keys and TLS came along."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from trustyard.app import prepare
from trustyard.cli.main import main
from trustyard.config import Settings

from ..e2e import (
    ADMIN,
    Clients,
    Registry,
    Server,
    free_port,
    local_blobs_ok,
    random_image,
    sha256_digest,
    start_registry,
    trustyard_bin,
    wait_until,
    write_oci_layout,
)


@pytest.fixture
def clients(tmp_path: Path) -> Iterator[Clients]:
    tools = Clients(tmp_path / "clients")
    try:
        yield tools
    finally:
        tools.close()


def serve(data_dir: Path, ca: Path, secret: str) -> Registry:
    """`trustyard serve` on a restored data directory; ready when /v2/ answers over TLS with the old CA."""
    port = free_port()
    cmd = [trustyard_bin(), "serve", "--data-dir", data_dir, "--listen", f"127.0.0.1:{port}"]
    server = Server(cmd, data_dir.parent / "restored.log")
    registry = Registry("trustyard", data_dir, port, server, cert_dir=ca.parent, secret=secret)

    def ready() -> bool:
        try:
            return httpx.get(f"{registry.url}/v2/", verify=registry.ssl_context(), timeout=2).status_code == 401
        except httpx.TransportError:
            return False

    wait_until(ready, server, "the restored registry")
    return registry


def test_backup_while_serving_wipe_restore_pull_everything_back(tmp_path: Path, clients: Clients) -> None:
    data = tmp_path / "data"
    registry = start_registry("trustyard", data)
    images = {f"backup/app{seed}": random_image(seed) for seed in range(3)}
    try:
        clients.login(registry)
        layout = write_oci_layout(tmp_path / "layout", dict(images))
        pushed = {name: clients.push(layout, name, registry.ref(name, "v1")) for name in images}
        assert pushed == {name: image.digest for name, image in images.items()}

        backup = subprocess.run(
            [trustyard_bin(), "backup", tmp_path / "backup", "--data-dir", data, "--json"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert backup.returncode == 0, backup.stderr
        report = json.loads(backup.stdout)
        assert report["index"] == "trustyard.db"
        assert report["copied"] == ["keys", "tls", "storage"]
    finally:
        registry.stop()

    shutil.rmtree(data)  # the machine is gone
    assert registry.cert_dir is not None
    assert registry.secret is not None
    assert registry.password is not None
    old_ca = registry.cert_dir / "ca.crt"
    restored = tmp_path / "fresh" / "trustyard-data"
    shutil.copytree(tmp_path / "backup", restored)  # docs: cp -a BACKUP/. DATA_DIR/

    again = serve(restored, old_ca, registry.secret)
    try:
        clients.login(again)  # the app token made before the backup
        login = httpx.get(f"{again.url}/api/v1/me", auth=(ADMIN, registry.password), verify=again.ssl_context())
        assert login.status_code == 200
        for name, image in images.items():
            pulled = tmp_path / "pulled" / name.replace("/", "-")
            pulled.parent.mkdir(exist_ok=True)
            clients.copy(again.ref(name, "v1"), f"oci:{pulled}:v1")
            local_blobs_ok(pulled, image.blobs())
            assert sha256_digest(clients.inspect_raw(again.ref(name, "v1"))) == image.digest
    finally:
        again.stop()


def test_a_backup_goes_into_a_new_or_empty_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    asyncio.run(prepare(Settings(data_dir=data)))
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "something").write_text("x")
    refused = CliRunner().invoke(main, ["backup", str(tmp_path / "used"), "--data-dir", str(data)])
    assert refused.exit_code == 1
    assert "is not empty" in refused.output
    said = CliRunner().invoke(main, ["backup", str(tmp_path / "new"), "--data-dir", str(data), "--no-storage"])
    assert said.exit_code == 0, said.output
    assert said.output.startswith(f"backed up to {tmp_path / 'new'}: trustyard.db, keys; storage not copied")
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["keys", "trustyard.db"]  # no TLS: never served

"""deploy/: the systemd unit docs/deploy.md installs, and the compose file and HAProxy config for N nodes."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet

from trustyard.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_the_unit_restarts_serve_and_matches_the_docs() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ROOT / "deploy" / "trustyard.service")
    service = unit["Service"]
    assert service["Restart"] == "on-failure"
    assert service["KillMode"] == "mixed"
    assert service["StateDirectoryMode"] == "0700"
    executable, command, *flags = service["ExecStart"].split()
    assert command == "serve"
    assert "--data-dir" in flags
    docs = (ROOT / "docs" / "deploy.md").read_text()
    assert f"sudo python3 -m venv {Path(executable).parent.parent}" in docs
    assert "install -m 0644 deploy/trustyard.service /etc/systemd/system/trustyard.service" in docs
    assert unit["Install"]["WantedBy"] == "multi-user.target"


# deploy/compose.yaml and deploy/compose-haproxy.cfg: the N-node deployment with containers. No bridge
# networking on the test machines, so these check the files with the real tools (docker-compose's own
# validation and interpolation, haproxy -c, trustyard's settings parser) rather than bring them up; the
# image itself is run in tests/e2e/test_image.py.
COMPOSE_ENV = {
    "TRUSTYARD_DATABASE_URL": "postgresql+asyncpg://trustyard:secret@db.example/trustyard",
    "TRUSTYARD_PUBLIC_URL": "https://registry.example.com",
    "TRUSTYARD_TLS_PEM": "/etc/ssl/private/registry.pem",
}
STORAGE_ENV = (
    "TRUSTYARD_STORAGE__S3__BUCKET=registry\n"
    "TRUSTYARD_STORAGE__S3__ACCESSKEY=AKIA1\n"
    "TRUSTYARD_STORAGE__S3__SECRETKEY=s3cr3t\n"
)


def compose_config(directory: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` on deploy/compose.yaml (copied into `directory` beside a trustyard.env)."""
    for name in ("compose.yaml", "compose-haproxy.cfg"):
        shutil.copy(ROOT / "deploy" / name, directory / name)
    (directory / "trustyard.env").write_text(STORAGE_ENV)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTYARD_")}
    return subprocess.run(
        ["docker-compose", "--project-name", "trustyard", "-f", "compose.yaml", "config"],
        cwd=directory,
        env={**clean, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_compose_gives_every_node_the_shared_key_database_and_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = Fernet.generate_key().decode()
    done = compose_config(tmp_path, **COMPOSE_ENV, TRUSTYARD_SECRET_KEY=key)
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    node, haproxy = services["trustyard"], services["haproxy"]
    assert node["deploy"]["replicas"] == 3
    assert "ports" not in node  # only HAProxy is reachable from outside
    assert [p["target"] for p in haproxy["ports"]] == [8443]
    environment: dict[str, str] = node["environment"]
    assert environment["TRUSTYARD_SECRET_KEY"] == key

    # Every variable the nodes get is a setting trustyard takes, with a value it accepts.
    for name in [n for n in os.environ if n.startswith("TRUSTYARD_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, str(value))
    settings = Settings()
    assert settings.database_url == COMPOSE_ENV["TRUSTYARD_DATABASE_URL"]
    assert settings.secret_key is not None
    assert settings.secret_key.get_secret_value() == key
    assert settings.insecure_http
    assert settings.public_url == "https://registry.example.com"
    assert settings.storage.s3 is not None
    assert settings.storage.s3.bucket == "registry"
    assert settings.trusted_proxies


def test_compose_refuses_to_start_nodes_without_the_secret_key(tmp_path: Path) -> None:
    done = compose_config(tmp_path, **COMPOSE_ENV)
    assert done.returncode != 0
    assert "set TRUSTYARD_SECRET_KEY" in done.stderr


def test_the_compose_haproxy_config_is_valid_and_balances_by_readiness(tmp_path: Path) -> None:
    pem = tmp_path / "registry.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
            *("-subj", "/CN=registry.example.com", "-days", "1", "-keyout", pem, "-out", tmp_path / "cert.pem"),
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=True,
    )
    pem.write_text((tmp_path / "cert.pem").read_text() + pem.read_text())
    source = (ROOT / "deploy" / "compose-haproxy.cfg").read_text()
    assert "/usr/local/etc/haproxy/registry.pem" in source  # where compose.yaml mounts the PEM
    config = tmp_path / "haproxy.cfg"
    config.write_text(source.replace("/usr/local/etc/haproxy/registry.pem", str(pem)))
    checked = subprocess.run(
        ["haproxy", "-c", "-f", config], stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "balance roundrobin" in source
    assert "option httpchk GET /readyz" in source

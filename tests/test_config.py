"""Startup settings: YAML file, environment precedence, Distribution's storage block, unknown keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustyard.config import Settings, load_settings
from trustyard.errors import ConfigInvalid


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(text)
    return path


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.listen == "0.0.0.0:5000"
    assert settings.data_dir == tmp_path / "trustyard-data"  # ./trustyard-data where the command was typed
    assert settings.default_storage_root == tmp_path / "trustyard-data" / "storage"
    assert settings.storage.driver == "filesystem"
    assert settings.database.startswith("sqlite+aiosqlite:///")
    assert settings.worker_count >= 1
    assert settings.refresh_tokens is False  # one ~/.docker/config.json for docker, podman and skopeo


def test_refresh_tokens_from_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(write(tmp_path, "refresh_tokens: true\n")).refresh_tokens is True
    monkeypatch.setenv("TRUSTYARD_REFRESH_TOKENS", "false")
    assert load_settings(write(tmp_path, "refresh_tokens: true\n")).refresh_tokens is False


def test_distribution_storage_block_drops_in(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        """
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging: {enabled: false}
""",
    )
    settings = load_settings(config)
    assert settings.storage.filesystem is not None
    assert settings.storage.filesystem.rootdirectory == Path("/var/lib/registry")
    assert settings.storage.driver == "filesystem"


def test_environment_overrides_file_and_flags_override_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(tmp_path, "listen: 127.0.0.1:6000\nworkers: 3\n")
    monkeypatch.setenv("TRUSTYARD_WORKERS", "5")
    monkeypatch.setenv("TRUSTYARD_STORAGE__FILESYSTEM__ROOTDIRECTORY", "/srv/blobs")
    settings = load_settings(config, listen="127.0.0.1:7000")
    assert settings.workers == 5
    assert settings.listen == "127.0.0.1:7000"
    assert settings.storage.filesystem is not None
    assert settings.storage.filesystem.rootdirectory == Path("/srv/blobs")
    assert settings.host_port == ("127.0.0.1", 7000)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("listne: 1.2.3.4:5\n", "listne"),
        ("storage:\n  filesystem:\n    rootdir: /x\n", "rootdir"),
        ("storage:\n  filesystem: {}\n  inmemory: {}\n", "exactly one driver"),
        ("workers: 0\n", "workers"),
        ("- a list\n", "YAML mapping"),
    ],
)
def test_invalid_configuration_fails_with_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigInvalid, match=message):
        load_settings(write(tmp_path, text))


def test_trust_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTYARD_ADMIN_PASSWORD", "from-the-environment")
    monkeypatch.setenv("TRUSTYARD_PUBLIC_NAMES", '["registry.example.com"]')
    settings = load_settings(None, data_dir=tmp_path)
    assert settings.admin_password is not None
    assert settings.admin_password.get_secret_value() == "from-the-environment"
    assert "from-the-environment" not in repr(settings)
    assert settings.public_names == ["registry.example.com"]
    assert settings.token_key_path == tmp_path / "keys" / "token.pem"
    assert not settings.insecure_http
    monkeypatch.setenv("TRUSTYARD_TLS_CERT", str(tmp_path / "cert.pem"))
    with pytest.raises(ConfigInvalid, match="tls_cert and tls_key go together"):
        load_settings(None)


def test_workers_receive_the_secrets_not_their_masks(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        """
storage:
  swift:
    authurl: http://127.0.0.1:8080/auth/v1.0
    username: test:tester
    password: the-api-key
    container: images
    secretkey: temp-url-key
""",
    )
    settings = load_settings(config)
    again = Settings.model_validate_json(settings.for_workers())
    assert again.storage.swift is not None
    assert again.storage.swift.password.get_secret_value() == "the-api-key"
    assert again.storage.swift.secretkey is not None
    assert again.storage.swift.secretkey.get_secret_value() == "temp-url-key"
    assert again == settings
    assert "the-api-key" not in repr(again)  # still masked wherever settings are printed


# Paths: relative ones mean "relative to where the command was typed", resolved once when settings load, so
# they still hold after `serve` changes directory (it starts Granian from the data directory).


def test_relative_paths_from_flags_resolve_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, data_dir=Path("data"), tls_cert=Path("tls/cert.pem"), tls_key=Path("tls/key.pem"))
    assert settings.data_dir == tmp_path / "data"
    assert settings.tls_cert == tmp_path / "tls" / "cert.pem"
    assert settings.tls_key == tmp_path / "tls" / "key.pem"
    assert settings.token_key_path == tmp_path / "data" / "keys" / "token.pem"
    assert settings.tls_dir == tmp_path / "data" / "tls"
    assert settings.database == f"sqlite+aiosqlite:///{tmp_path / 'data' / 'trustyard.db'}"
    monkeypatch.chdir(tmp_path / "..")
    assert settings.data_dir == tmp_path / "data"  # what was resolved stays put


def test_relative_paths_in_the_config_file_resolve_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        tmp_path,
        """
data_dir: data
tls_cert: certs/server.crt
tls_key: certs/server.key
token_key: keys/token.pem
database_url: sqlite+aiosqlite:///index/trustyard.db
storage:
  filesystem:
    rootdirectory: blobs
""",
    )
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    settings = load_settings(Path("../config.yml"))
    assert settings.data_dir == work / "data"
    assert settings.tls_cert == work / "certs" / "server.crt"
    assert settings.tls_key == work / "certs" / "server.key"
    assert settings.token_key_path == work / "keys" / "token.pem"
    assert settings.database == f"sqlite+aiosqlite:///{work / 'index' / 'trustyard.db'}"
    assert settings.storage.filesystem is not None
    assert settings.storage.filesystem.rootdirectory == work / "blobs"


def test_relative_paths_in_the_environment_resolve_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRUSTYARD_DATA_DIR", "./env-data")
    monkeypatch.setenv("TRUSTYARD_STORAGE__FILESYSTEM__ROOTDIRECTORY", "env-blobs")
    settings = load_settings()
    assert settings.data_dir == tmp_path / "env-data"
    assert settings.storage.filesystem is not None
    assert settings.storage.filesystem.rootdirectory == tmp_path / "env-blobs"


def test_absolute_paths_and_other_databases_are_kept(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://trustyard:secret@db.example/trustyard"
    settings = load_settings(None, data_dir=tmp_path / "data", database_url=url)
    assert settings.data_dir == tmp_path / "data"
    assert settings.database == url
    memory = load_settings(None, database_url="sqlite+aiosqlite:///:memory:")
    assert memory.database == "sqlite+aiosqlite:///:memory:"


def test_trusted_proxies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(write(tmp_path, "trusted_proxies: [10.0.0.0/8, 192.0.2.7]\n")).trusted_proxies == [
        "10.0.0.0/8",
        "192.0.2.7",
    ]
    monkeypatch.setenv("TRUSTYARD_TRUSTED_PROXIES", '["127.0.0.1"]')
    assert load_settings().trusted_proxies == ["127.0.0.1"]
    monkeypatch.delenv("TRUSTYARD_TRUSTED_PROXIES")
    with pytest.raises(ConfigInvalid, match="not an IP address or network"):
        load_settings(write(tmp_path, "trusted_proxies: [proxy.example.com]\n"))

"""Startup settings: defaults ← YAML file ← ``TRUSTYARD_*`` environment, typed; unknown keys fail at start.

The ``storage:`` section takes CNCF Distribution's ``config.yml`` storage block as it is (one driver section
such as ``filesystem: {rootdirectory: ...}`` or ``inmemory: {}``, plus ``delete``, ``redirect``, ``cache``,
``maintenance`` and ``tag``, which Distribution defines and trustyard accepts), so an existing Distribution
or DTR configuration drops in. Nested environment keys use ``__``: ``TRUSTYARD_STORAGE__FILESYSTEM__ROOTDIRECTORY``.
"""

from __future__ import annotations

import json
import os
from ipaddress import ip_network
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url

from trustyard.auth.credential_cache import DEFAULT_TTL
from trustyard.auth.proxies import parse_networks
from trustyard.errors import ConfigInvalid
from trustyard.services.webhook_settings import NotificationsSettings
from trustyard.storage.config import StorageSettings


class MetricsSettings(BaseModel):
    """Who may read ``/metrics``, ``/healthz``, ``/readyz`` and ``/debug/health`` (docs/monitoring.md)."""

    model_config = ConfigDict(extra="forbid")

    #: Client addresses or networks (``127.0.0.1``, ``10.0.0.0/8``, ``::1``); empty: everyone may read them.
    allow: list[str] = Field(default_factory=list)

    @field_validator("allow")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network (e.g. 10.0.0.0/8)") from None
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRUSTYARD_", env_nested_delimiter="__", extra="forbid")

    data_dir: Path = Path("trustyard-data")
    listen: str = "0.0.0.0:5000"
    #: SQLAlchemy URL; default SQLite in the data directory. PostgreSQL: postgresql+asyncpg://user@host/db
    database_url: str | None = None
    #: Worker processes; default one per CPU core (at least 2 on multi-core machines).
    workers: int | None = Field(default=None, ge=1)
    #: trustyard's own level; the libraries' loggers (HTTP clients, SQLAlchemy, Alembic) stay at WARNING
    #: unless ``trace`` (everything, SQL included) or ``loggers`` (e.g. ``{httpx: info}``) asks for more.
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = "info"
    loggers: dict[str, Literal["critical", "error", "warning", "info", "debug"]] = Field(default_factory=dict)
    #: One line per request (Granian's access log).
    access_log: bool = False
    #: ``text``: Granian's access log; ``json``: one JSON object per request on the ``trustyard.access`` logger.
    access_log_format: Literal["text", "json"] = "text"
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    #: Webhook endpoints: Distribution's ``notifications:`` block (docs/webhooks.md). They are read-only in
    #: the UI, API and CLI, which manage endpoints of their own beside them.
    notifications: NotificationsSettings = Field(default_factory=NotificationsSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)

    # Trust (docs/security.md)
    #: Serve plain HTTP: only behind a proxy that terminates TLS (set public_url to the proxy's https URL).
    insecure_http: bool = False
    #: Operator-supplied certificate (PEM, leaf first, then intermediates) and key; default: the registry's own CA.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: Extra DNS names or IP addresses the generated server certificate covers (beside this host's names).
    public_names: list[str] = Field(default_factory=list)
    #: The registry's URL as clients reach it (e.g. behind a proxy); the token realm is PUBLIC_URL/auth/token.
    public_url: str | None = None
    #: Reverse proxies (addresses or networks, e.g. 10.0.0.0/8) whose X-Forwarded-For names the client; from
    #: any other peer the header is ignored. The client address keys the slowdown of password guessing.
    trusted_proxies: list[str] = Field(default_factory=list)
    #: An operator-managed token signing key (EC P-256 PEM, created if missing). Unset (the default), every node
    #: uses the cluster's key, kept in the database sealed with the secret key; set, this file is authoritative
    #: for this node, and every node must then be given the same file.
    token_key: Path | None = None
    #: Lifetime of registry access tokens (seconds) and of refresh tokens.
    token_ttl: int = Field(default=300, ge=30, le=3600)
    #: Answer ``offline_token=true`` (docker login) with a refresh token. Off by default, as Distribution and
    #: Harbor do: docker stores a refresh token as an ``identitytoken`` in ~/.docker/config.json, which podman,
    #: buildah and skopeo refuse, so one auth file would no longer serve every client.
    refresh_tokens: bool = False
    refresh_token_ttl: int = Field(default=30 * 86400, ge=3600)
    #: How long (seconds) a worker trusts HTTP Basic credentials on /v2/ it has verified, before checking them
    #: again; a password change or a revoked app token takes at most this long to take effect. 0: never cache.
    basic_auth_cache_ttl: int = Field(default=DEFAULT_TTL, ge=0, le=300)
    #: The first start's admin password (TRUSTYARD_ADMIN_PASSWORD); generated and printed once when unset.
    admin_password: SecretStr | None = None
    #: The key sealing secrets at rest (the nodes' shared token and session keys, storage credentials and webhook
    #: secrets saved at run time): a Fernet key. Nodes sharing a database must share it: give it here
    #: (TRUSTYARD_SECRET_KEY) or in a file (``secret_key_file``). With neither, the first start generates
    #: DATA_DIR/keys/secret.key (the embedded default: one node).
    secret_key: SecretStr | None = None
    secret_key_file: Path | None = None
    #: Garbage collection's schedule until one is saved in the web UI or the admin API: how often to collect
    #: ("24h", "7d"; "off", the default, never) and the options of scheduled runs (docs/gc.md).
    gc_every: str = "off"
    gc_untagged: bool = False
    gc_grace: str = "2h"
    #: Where ``storage:`` came from; set by trustyard when it loads settings. Storage set by the config file or
    #: the environment is pinned: Settings > Storage shows it read-only.
    storage_source: Literal["default", "config file", "environment"] = "default"

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: list[str]) -> list[str]:
        parse_networks(value)
        return value

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: set both or neither")
        if self.secret_key is not None and self.secret_key_file is not None:
            raise ValueError("give the secret key once: secret_key (TRUSTYARD_SECRET_KEY) or secret_key_file, not both")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence, strongest first: explicit (CLI flags), environment, then the YAML file (passed as init).
        return (env_settings, init_settings)

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'trustyard.db'}"

    @property
    def default_storage_root(self) -> Path:
        """Where filesystem storage lives when ``storage.filesystem.rootdirectory`` is not set."""
        return self.data_dir / "storage"

    @property
    def secret_key_path(self) -> Path:
        return self.secret_key_file or self.data_dir / "keys" / "secret.key"

    @property
    def keys_dir(self) -> Path:
        """Where a data directory keeps its keys: the generated secret key and, from before the shared keys
        moved into the database, ``token.pem`` and ``session.key`` (adopted by the first start)."""
        return self.data_dir / "keys"

    @property
    def metrics_dir(self) -> Path:
        """prometheus_client's per-worker files (emptied at every start)."""
        return self.data_dir / "metrics"

    @property
    def tls_dir(self) -> Path:
        return self.data_dir / "tls"

    @property
    def token_key_path(self) -> Path:
        return self.token_key or self.data_dir / "keys" / "token.pem"

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "0.0.0.0", int(port)

    def with_absolute_paths(self) -> Settings:
        """The same settings with every path absolute, resolved against the current working directory, so
        they mean the same after ``serve`` changes directory and in worker processes started elsewhere."""

        def absolute(path: Path | None) -> Path | None:
            return path.expanduser().absolute() if path is not None else None

        return self.model_copy(
            update={
                "data_dir": self.data_dir.expanduser().absolute(),
                "database_url": _absolute_sqlite(self.database_url),
                "storage": self.storage.absolute(),
                "tls_cert": absolute(self.tls_cert),
                "tls_key": absolute(self.tls_key),
                "token_key": absolute(self.token_key),
                "secret_key_file": absolute(self.secret_key_file),
            }
        )

    def for_workers(self) -> str:
        """These settings as JSON for the worker processes, secrets included (``model_dump_json`` masks
        SecretStr values as ``**********``, which would leave workers with unusable storage credentials)."""

        def reveal(value: Any) -> Any:
            if isinstance(value, SecretStr):
                return value.get_secret_value()
            if isinstance(value, dict):
                return {key: reveal(item) for key, item in value.items()}
            if isinstance(value, list | tuple):
                return [reveal(item) for item in value]
            if isinstance(value, Path):
                return str(value)
            return value

        return json.dumps(reveal(self.model_dump(mode="python")))

    @property
    def worker_count(self) -> int:
        if self.workers:
            return self.workers
        return max(1, os.cpu_count() or 1)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from an optional YAML file, the environment and explicit overrides (CLI flags)."""
    values: dict[str, Any] = {}
    if config_file is not None:
        import yaml  # here: workers get their settings as JSON and never parse YAML

        try:
            loaded = yaml.safe_load(config_file.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigInvalid(f"cannot read config file {config_file}: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigInvalid(f"config file {config_file} must be a YAML mapping")
        values.update(loaded)
    values.pop("storage_source", None)  # not the operator's to set
    try:
        settings = Settings(**values)
        explicit = {k: v for k, v in overrides.items() if v is not None}
        if any(name.upper().startswith("TRUSTYARD_STORAGE__") for name in os.environ):
            explicit["storage_source"] = "environment"
        elif "storage" in values:
            explicit["storage_source"] = "config file"
        settings = settings.model_copy(update=explicit) if explicit else settings
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigInvalid(f"invalid configuration: {problems}") from None
    # Paths from flags, the file and the environment are relative to where the command was typed: resolve
    # them here, once, before anything changes directory.
    return settings.with_absolute_paths()


def _absolute_sqlite(url: str | None) -> str | None:
    """A SQLite URL naming a relative file (``sqlite+aiosqlite:///index.db``) made absolute; others unchanged."""
    if url is None or not url.startswith("sqlite"):
        return url
    parsed = make_url(url)
    if not parsed.database or parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return url
    return parsed.set(database=str(Path(parsed.database).expanduser().absolute())).render_as_string(hide_password=False)

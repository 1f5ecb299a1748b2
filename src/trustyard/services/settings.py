"""Runtime settings: the storage backend, chosen while trustyard runs (UI Settings > Storage, admin API, CLI).

Saving new storage settings probes the backend first (write, stat, read back, delete a probe object) and
refuses with the backend's own error, keeping the old backend. Secrets are sealed before they are stored and
never shown back (only whether they are set). Every worker polls the settings generation (``refresh``) and
swaps its driver when it changes, so a change takes effect everywhere without a restart.

What a switch does to images: the SQL index is a cache of what storage holds, so after a switch it is
rebuilt from the new backend (images already there appear; nothing is copied). Switching back shows the
earlier images again, because they never left their backend.

Settings given in the config file or environment pin the storage: they show read-only with their source.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from trustyard.auth.secretbox import SecretBox
from trustyard.db.index import Index
from trustyard.db.settings import RuntimeSettings
from trustyard.errors import ConfigInvalid, SettingPinned, StorageProbeFailed, TrustyardError
from trustyard.services.actor import Actor
from trustyard.services.audit import Audit
from trustyard.services.storage import StorageAdmin
from trustyard.storage.config import DRIVERS, StorageSettings
from trustyard.storage.driver import StorageDriver
from trustyard.storage.factory import build_driver
from trustyard.storage.switchable import SwitchableDriver

STORAGE = "storage"
_SEALED = "$sealed"
#: Where probe objects go, under the backend's root: outside Distribution's docker/ tree.
PROBE_PREFIX = "trustyard-probe"


@dataclass(frozen=True, slots=True)
class StartupStorage:
    """Storage as the process started with it: from the config file, the environment, or the default."""

    settings: StorageSettings
    pinned_by: str | None  # "config file" or "environment" when they set storage:, else None
    default_root: Path  # filesystem root when none is configured


@dataclass(frozen=True, slots=True)
class StorageView:
    driver: str
    parameters: dict[str, Any]  # the driver's parameters, secrets left out
    secrets: dict[str, bool]  # each secret parameter of the driver: set or not
    source: str  # "default", "runtime", "config file" or "environment"
    pinned: bool
    updated_by: str | None = None
    updated_at: datetime | None = None

    def as_document(self) -> dict[str, Any]:
        """The view as plain JSON-able data, secrets as "set" / "not set" (what every edge shows)."""
        return {
            "driver": self.driver,
            "parameters": self.parameters,
            "secrets": {name: "set" if present else "not set" for name, present in self.secrets.items()},
            "source": self.source,
            "pinned": self.pinned,
            "updated_by": self.updated_by,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }


class Settings:
    def __init__(
        self,
        runtime: RuntimeSettings,
        index: Index,
        driver: SwitchableDriver,
        box: SecretBox,
        startup: StartupStorage,
        storage_admin: StorageAdmin,
        audit: Audit,
    ) -> None:
        self._runtime = runtime
        self._index = index
        self._driver = driver
        self._box = box
        self._startup = startup
        self._storage_admin = storage_admin
        self._audit = audit
        self._generation = 0  # the runtime generation this process serves (0: the startup settings)

    async def storage(self, actor: Actor) -> StorageView:
        actor.require_admin()
        settings, stored = await self._effective()
        source = self._startup.pinned_by or ("runtime" if stored else "default")
        view = _view(settings, source, self._startup.pinned_by is not None, stored)
        if settings.driver == "filesystem" and "rootdirectory" not in view.parameters:
            view.parameters["rootdirectory"] = str(self._startup.default_root)
        return view

    async def test_storage(self, actor: Actor, candidate: StorageSettings) -> None:
        """Probe ``candidate`` without saving it; raises StorageProbeFailed with the backend's message."""
        actor.require_admin()
        settings = await self._complete_secrets(candidate)
        driver = self._build(settings)
        try:
            await probe(driver)
        finally:
            await driver.close()

    async def save_storage(self, actor: Actor, candidate: StorageSettings) -> StorageView:
        actor.require_admin()
        if self._startup.pinned_by is not None:
            raise SettingPinned(f"storage is set by the {self._startup.pinned_by}; change it there")
        settings = await self._complete_secrets(candidate)
        driver = self._build(settings)
        try:
            await probe(driver)
        except BaseException:
            await driver.close()
            raise
        self._generation = await self._runtime.put(STORAGE, self._seal(settings), actor.name)
        self._driver.swap(driver)
        # The index is a cache of storage: rebuild it from the backend now in use.
        await self._index.clear()
        report = await self._storage_admin.reindex(Actor.system())
        await self._audit.record(
            actor,
            "settings.storage",
            settings.driver,
            parameters=_view(settings, "runtime", False, None).parameters,
            repositories=report.repositories,
        )
        return await self.storage(actor)

    async def refresh(self) -> bool:
        """Adopt storage settings another worker or node saved; True when the backend was swapped."""
        if self._startup.pinned_by is not None:
            return False
        generation = await self._runtime.generation(STORAGE)
        if generation == self._generation:
            return False
        settings, _stored = await self._effective()
        self._driver.swap(self._build(settings))
        self._generation = generation
        return True

    async def _effective(self) -> tuple[StorageSettings, Any]:
        if self._startup.pinned_by is not None:
            return self._startup.settings, None
        stored = await self._runtime.get(STORAGE)
        if stored is None:
            return self._startup.settings, None
        return self._unseal(stored.value), stored

    async def _complete_secrets(self, candidate: StorageSettings) -> StorageSettings:
        """Secrets are write-only: a secret left empty keeps the one already saved for the same driver."""
        current, _stored = await self._effective()
        name = candidate.driver
        section, saved = getattr(candidate, name, None), getattr(current, name, None)
        if section is None or saved is None or current.driver != name:
            return candidate
        kept = {
            field: getattr(saved, field)
            for field in _secret_fields(section)
            if _blank(getattr(section, field)) and getattr(saved, field) is not None
        }
        return candidate.model_copy(update={name: section.model_copy(update=kept)}) if kept else candidate

    def _build(self, settings: StorageSettings) -> StorageDriver:
        fs = settings.filesystem
        if fs is not None and fs.rootdirectory is not None and not fs.rootdirectory.is_absolute():
            raise ConfigInvalid(f"the filesystem root directory must be an absolute path, not {fs.rootdirectory}")
        try:
            return build_driver(settings, self._startup.default_root)
        except TrustyardError:
            raise
        except (OSError, ValueError) as exc:
            raise StorageProbeFailed(f"cannot set up the {settings.driver} backend: {exc}") from None

    def _seal(self, settings: StorageSettings) -> str:
        document = settings.model_dump(mode="python", exclude_none=True)
        name = settings.driver
        section = getattr(settings, name, None)
        if section is not None:
            for field in _secret_fields(section):
                value = getattr(section, field)
                if value is not None:
                    document[name][field] = {_SEALED: self._box.seal(value.get_secret_value())}
        return json.dumps(document, default=str)

    def _unseal(self, stored: str) -> StorageSettings:
        document = json.loads(stored)
        for name in DRIVERS:
            for field, value in (document.get(name) or {}).items():
                if isinstance(value, dict) and _SEALED in value:
                    document[name][field] = self._box.open(value[_SEALED])
        try:
            return StorageSettings.model_validate(document)
        except ValidationError as exc:
            raise ConfigInvalid(f"stored storage settings are invalid: {exc}") from None


async def probe(driver: StorageDriver) -> None:
    """Write, stat, read back and delete a probe object; StorageProbeFailed names the step and the backend's error."""
    key = f"{PROBE_PREFIX}/{uuid.uuid4().hex}"
    data = os.urandom(4096)
    step = "write"
    try:
        await driver.write(key, _once(data))
        step = "stat"
        info = await driver.stat(key)
        if info is None or info.size != len(data):
            raise StorageProbeFailed(f"the probe object {key} was written but stat says {info}")
        step = "read"
        if b"".join([chunk async for chunk in driver.read(key)]) != data:
            raise StorageProbeFailed(f"the probe object {key} read back different bytes")
        step = "delete"
        await driver.delete(key)
    except StorageProbeFailed:
        raise
    except Exception as exc:
        message = exc.message if isinstance(exc, TrustyardError) else f"{type(exc).__name__}: {exc}"
        raise StorageProbeFailed(f"{driver.name}: {step} of a probe object failed: {message}") from None


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _secret_fields(section: Any) -> list[str]:
    return [name for name, info in type(section).model_fields.items() if "SecretStr" in str(info.annotation)]


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, SecretStr) and not value.get_secret_value())


def _view(settings: StorageSettings, source: str, pinned: bool, stored: Any) -> StorageView:
    name = settings.driver
    section = getattr(settings, name, None)
    parameters: dict[str, Any] = {}
    secrets: dict[str, bool] = {}
    if section is not None:
        hidden = set(_secret_fields(section))
        parameters = section.model_dump(mode="json", exclude=hidden, exclude_none=True)
        secrets = {field: not _blank(getattr(section, field)) for field in hidden}
        if "redirect" in parameters and settings.redirects_disabled:
            parameters["redirect"] = False  # what the driver does: the storage-wide switch wins
    return StorageView(
        driver=name,
        parameters=parameters,
        secrets=secrets,
        source=source,
        pinned=pinned,
        updated_by=getattr(stored, "updated_by", None),
        updated_at=getattr(stored, "updated_at", None),
    )

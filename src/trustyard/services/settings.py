"""Runtime settings: the storage backend, chosen while trustyard runs (UI Settings > Storage, admin API, CLI).

Saving new storage settings probes the backend first (write, stat, read back, delete a probe object) and
refuses with the backend's own error, keeping the old backend. Secrets are sealed before they are stored and
never shown back (only whether they are set). A save stores the backend under a new generation
(services/backends.py), makes it the storage plan's active backend, and returns once every live worker serves
it (services/switch.py: the switch is atomic).

What a switch does to images: the SQL index is a cache of what storage holds, so a switch clears it (in the
same transaction as the plan change) and a background adoption indexes the new backend (services/adoption.py;
images already there appear as it goes; nothing is copied). Switching back shows the earlier images again,
because they never left their backend. Upload sessions begun before the switch finish on their own backend.

Settings given in the config file or environment pin the storage: they show read-only with their source.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from trustyard.db.index import Index
from trustyard.db.storage_backends import StorageBackendRow
from trustyard.errors import AlreadyExists, SettingPinned, StorageProbeFailed, TrustyardError
from trustyard.services.actor import Actor
from trustyard.services.adoption import Adoption
from trustyard.services.audit import Audit
from trustyard.services.backends import Backends, secret_fields
from trustyard.services.reservations import LEASE as GC_LEASE
from trustyard.services.switch import StorageSwitch
from trustyard.storage.config import StorageSettings
from trustyard.storage.driver import PROBING, SERVING, StorageDriver

log = logging.getLogger(__name__)
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
        index: Index,
        backends: Backends,
        switch: StorageSwitch,
        adoption: Adoption,
        startup: StartupStorage,
        audit: Audit,
    ) -> None:
        self._index = index
        self._backends = backends
        self._switch = switch
        self._adoption = adoption
        self._startup = startup
        self._audit = audit

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
        await self._probe(await self._complete_secrets(candidate))

    async def save_storage(self, actor: Actor, candidate: StorageSettings) -> StorageView:
        """Probe, store as a new backend generation, switch the plan to it (clearing the index and starting its
        background adoption in the same transaction), serve it here, and return once every live worker does."""
        actor.require_admin()
        if self._startup.pinned_by is not None:
            raise SettingPinned(f"storage is set by the {self._startup.pinned_by}; change it there")
        migration = await self._index.migrations.active()
        if migration is not None:
            # A plain switch clears the index and re-adopts: it would cut the migration's copy short.
            raise AlreadyExists(
                f"storage migration {migration.id} is under way; switch storage once it is done "
                "(`trustyard storage migrate --status`)"
            )
        collecting = await self._index.leases.current(GC_LEASE)
        if collecting is not None:  # it deletes by what the index says of the backend in use
            raise AlreadyExists(f"garbage collection is running ({collecting.holder}); save again when it has finished")
        settings, generation = await self._add_backend(actor, candidate)
        plan = await self._index.switch_storage(generation, None, actor.name, adopt=True)
        await self._switch.refresh()
        self._adoption.kick()  # here at once; otherwise the first worker whose loop sees it
        lagging = await self._switch.wait_for_workers(plan.version)
        if lagging:
            log.warning("storage plan %d: %d workers did not ack; they fence themselves", plan.version, len(lagging))
        await self._audit.record(
            actor,
            "settings.storage",
            settings.driver,
            parameters=_view(settings, "runtime", False, None).parameters,
            generation=generation,
        )
        return await self.storage(actor)

    async def register(self, actor: Actor, candidate: StorageSettings) -> int:
        """Probe ``candidate`` and store it as a new backend generation without switching to it (a migration
        switches the plan itself, keeping the index: services/migration.py); the new generation."""
        actor.require_admin()
        if self._startup.pinned_by is not None:
            raise SettingPinned(f"storage is set by the {self._startup.pinned_by}; change it there")
        _settings, generation = await self._add_backend(actor, candidate)
        return generation

    async def _add_backend(self, actor: Actor, candidate: StorageSettings) -> tuple[StorageSettings, int]:
        """Probe ``candidate`` (saved secrets filled in) and store it as a new backend generation."""
        settings = await self._complete_secrets(candidate)
        await self._probe(settings)
        return settings, await self._backends.add(settings, self._backends.build(settings, SERVING), actor.name)

    async def _probe(self, settings: StorageSettings) -> None:
        """Probe with a driver of its own that gives up in seconds (PROBING): the operator is waiting for the
        answer. The driver that serves is built after, with SERVING's patience."""
        driver = self._backends.build(settings, PROBING)
        try:
            await probe(driver)
        finally:
            await driver.close()

    async def refresh(self) -> bool:
        """Serve the plan another worker or node saved; True when the backend was swapped."""
        return await self._switch.refresh()

    async def _effective(self) -> tuple[StorageSettings, StorageBackendRow | None]:
        if self._startup.pinned_by is not None:
            return self._startup.settings, None
        active = (await self._index.backends.plan()).active
        stored = None if active == 0 else await self._index.backends.get(active)
        if stored is None:
            return self._startup.settings, None
        return self._backends.unseal(stored.settings), stored

    async def _complete_secrets(self, candidate: StorageSettings) -> StorageSettings:
        """Secrets are write-only: a secret left empty keeps the one already saved for the same driver."""
        current, _stored = await self._effective()
        name = candidate.driver
        section, saved = getattr(candidate, name, None), getattr(current, name, None)
        if section is None or saved is None or current.driver != name:
            return candidate
        kept = {
            field: getattr(saved, field)
            for field in secret_fields(section)
            if _blank(getattr(section, field)) and getattr(saved, field) is not None
        }
        return candidate.model_copy(update={name: section.model_copy(update=kept)}) if kept else candidate


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


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, SecretStr) and not value.get_secret_value())


def _view(settings: StorageSettings, source: str, pinned: bool, stored: Any) -> StorageView:
    name = settings.driver
    section = getattr(settings, name, None)
    parameters: dict[str, Any] = {}
    secrets: dict[str, bool] = {}
    if section is not None:
        hidden = set(secret_fields(section))
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
        updated_by=getattr(stored, "saved_by", None),
        updated_at=getattr(stored, "saved_at", None),
    )

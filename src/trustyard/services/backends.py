"""``Backends``: this worker's storage drivers, one per backend generation it needs, built once from the
settings stored for that generation (``storage_backends``) and kept until the process ends.

Generation 0 is the storage the process started with. An upload session names the generation its parts are
on, so any worker continues it on that backend, whatever the plan says now. Settings are sealed here: secrets
inside them are encrypted with the registry's secret box before they are stored, and opened when a driver is
built.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path

from pydantic import ValidationError

from trustyard.auth.secretbox import SecretBox
from trustyard.db.storage_backends import StorageBackendStore
from trustyard.errors import ConfigInvalid, StorageBackendGone, StorageProbeFailed, TrustyardError
from trustyard.storage.config import DRIVERS, StorageSettings
from trustyard.storage.driver import SERVING, Patience, StorageDriver
from trustyard.storage.factory import build_driver

log = logging.getLogger(__name__)

_SEALED = "$sealed"


class Backends:
    def __init__(
        self,
        store: StorageBackendStore,
        box: SecretBox,
        startup: StorageDriver,
        startup_settings: StorageSettings,
        default_root: Path,
    ) -> None:
        self._store = store
        self._box = box
        self._default_root = default_root
        self._startup_settings = startup_settings
        self._drivers: dict[int, StorageDriver] = {0: startup}
        self._lock = asyncio.Lock()

    async def driver(self, generation: int) -> StorageDriver:
        """The driver of backend ``generation`` (cached); ``StorageBackendGone`` when it cannot be built."""
        found = self._drivers.get(generation)
        if found is not None:
            return found
        async with self._lock:
            found = self._drivers.get(generation)
            if found is None:
                try:
                    found = self.build(await self.settings(generation), SERVING)
                except (ConfigInvalid, StorageProbeFailed) as exc:
                    raise StorageBackendGone(f"storage backend {generation} cannot be set up: {exc.message}") from None
                self._drivers[generation] = found
            return found

    async def settings(self, generation: int) -> StorageSettings:
        if generation == 0:
            return self._startup_settings
        row = await self._store.get(generation)
        if row is None:
            raise StorageBackendGone(f"storage backend generation {generation} is not stored")
        return self.unseal(row.settings)

    def build(self, settings: StorageSettings, patience: Patience) -> StorageDriver:
        """A driver for ``settings``: SERVING for one that serves, PROBING for one that only probes them."""
        fs = settings.filesystem
        if fs is not None and fs.rootdirectory is not None and not fs.rootdirectory.is_absolute():
            raise ConfigInvalid(f"the filesystem root directory must be an absolute path, not {fs.rootdirectory}")
        try:
            return build_driver(settings, self._default_root, patience)
        except TrustyardError:
            raise
        except (OSError, ValueError) as exc:
            raise StorageProbeFailed(f"cannot set up the {settings.driver} backend: {exc}") from None

    async def add(self, settings: StorageSettings, driver: StorageDriver, saved_by: str) -> int:
        """Store ``settings`` as a new generation whose driver (already built and probed) is ``driver``."""
        generation = await self._store.add(self.seal(settings), saved_by)
        self._drivers[generation] = driver
        return generation

    def seal(self, settings: StorageSettings) -> str:
        document = settings.model_dump(mode="python", exclude_none=True)
        name = settings.driver
        section = getattr(settings, name, None)
        if section is not None:
            for field in secret_fields(section):
                value = getattr(section, field)
                if value is not None:
                    document[name][field] = {_SEALED: self._box.seal(value.get_secret_value())}
        return json.dumps(document, default=str)

    def unseal(self, stored: str) -> StorageSettings:
        document = json.loads(stored)
        for name in DRIVERS:
            for field, value in (document.get(name) or {}).items():
                if isinstance(value, dict) and _SEALED in value:
                    document[name][field] = self._box.open(value[_SEALED])
        try:
            return StorageSettings.model_validate(document)
        except ValidationError as exc:
            raise ConfigInvalid(f"stored storage settings are invalid: {exc}") from None

    async def close(self) -> None:
        for driver in self._drivers.values():
            with contextlib.suppress(Exception):
                await driver.close()
        self._drivers.clear()


def secret_fields(section: object) -> list[str]:
    return [name for name, info in type(section).model_fields.items() if "SecretStr" in str(info.annotation)]  # type: ignore[attr-defined]

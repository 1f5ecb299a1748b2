"""What a backup holds and how it is taken while the registry serves: the index first (one consistent
state), then the keys, TLS files and config, then the blobs when storage is a filesystem. Storage is written
before the index on every push, so everything the copied index names was already in storage when the copy
of storage began. The backup directory is laid out as a data directory: ``serve --data-dir`` it to restore."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from trustyard.errors import InvalidRequest
from trustyard.services.actor import Actor
from trustyard.services.settings import Settings, StorageView

#: Written beside the blobs but not published (staged uploads, temp files): not worth keeping.
UNPUBLISHED = (".trustyard-tmp",)


@dataclass(frozen=True)
class BackupReport:
    destination: Path
    index: str  # the index copy, relative to destination
    copied: list[str] = field(default_factory=list)  # directories and files copied beside it
    storage: str = ""  # what happened to the blobs, in a sentence


class Backups:
    def __init__(
        self,
        copy_index: Callable[[Path], Path],
        data_dir: Path,
        config_file: Path | None,
        settings: Settings,
    ) -> None:
        self._copy_index = copy_index
        self._data_dir = data_dir
        self._config_file = config_file
        self._settings = settings

    async def write(self, actor: Actor, destination: Path, *, with_storage: bool = True) -> BackupReport:
        actor.require_admin()
        view = await self._settings.storage(actor)
        # Copying is blocking file and database I/O, done off the event loop.
        return await asyncio.to_thread(self._write, view, destination, with_storage)

    def _write(self, view: StorageView, destination: Path, with_storage: bool) -> BackupReport:
        if destination.exists() and any(destination.iterdir()):
            raise InvalidRequest(f"{destination} is not empty: back up into a new or empty directory")
        destination.mkdir(parents=True, exist_ok=True, mode=0o700)
        index = self._copy_index(destination)
        copied = [name for name in ("keys", "tls") if self._copy_tree(self._data_dir / name, destination / name)]
        if self._config_file is not None:
            shutil.copy2(self._config_file, destination / "config.yml")
            copied.append("config.yml")
        if view.driver != "filesystem":
            where = view.parameters.get("bucket") or view.parameters.get("container") or "its bucket"
            storage = f"{view.driver} storage ({where}) not copied: back it up with the object store's own tools"
        elif not with_storage:
            storage = f"storage not copied (--no-storage): copy {view.parameters['rootdirectory']} yourself"
        else:
            self._copy_tree(Path(view.parameters["rootdirectory"]), destination / "storage")
            copied.append("storage")
            storage = f"copied {view.parameters['rootdirectory']} to storage/"
        return BackupReport(destination, index.name, copied, storage)

    @staticmethod
    def _copy_tree(source: Path, target: Path) -> bool:
        """Copy ``source`` (if it exists) to ``target``; files that vanish while copying (an upload finished,
        a tag moved) are skipped, since the index copy does not name them."""
        if not source.is_dir():
            return False
        for directory, subdirectories, files in os.walk(source):
            subdirectories[:] = [name for name in subdirectories if name not in UNPUBLISHED]
            here = target / Path(directory).relative_to(source)
            here.mkdir(parents=True, exist_ok=True)
            for name in files:
                try:
                    shutil.copy2(Path(directory) / name, here / name)
                except FileNotFoundError:
                    continue
        return True

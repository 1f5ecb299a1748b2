"""The ``storage:`` settings block, as CNCF Distribution's ``config.yml`` spells it, and which driver it names.

One driver section (``filesystem``, ``inmemory``; the object-store drivers add theirs) plus the storage-wide
sections Distribution defines (``delete``, ``redirect``, ``cache``, ``maintenance``, ``tag``), accepted so that
an existing Distribution or DTR configuration loads unchanged. Unknown keys are refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FilesystemStorage(_Strict):
    rootdirectory: Path | None = None  # default: DATA_DIR/storage
    maxthreads: int | None = None  # Distribution's knob; accepted, threads are sized by trustyard


class InMemoryStorage(_Strict):
    pass


#: Driver sections in the order they are looked for.
DRIVERS = ("filesystem", "inmemory")


class StorageSettings(_Strict):
    filesystem: FilesystemStorage | None = None
    inmemory: InMemoryStorage | None = None
    # Distribution's storage-wide sections.
    delete: dict[str, Any] | None = None
    redirect: dict[str, Any] | None = None
    cache: dict[str, Any] | None = None
    maintenance: dict[str, Any] | None = None
    tag: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_driver(self) -> StorageSettings:
        chosen = [name for name in DRIVERS if getattr(self, name) is not None]
        if len(chosen) > 1:
            raise ValueError(f"storage: configure exactly one driver, not {' and '.join(chosen)}")
        return self

    @property
    def driver(self) -> str:
        """The configured driver's name; filesystem when none is configured."""
        return next((name for name in DRIVERS if getattr(self, name) is not None), "filesystem")

    def absolute(self) -> StorageSettings:
        """The same settings with relative paths made absolute (workers may run from another directory)."""
        fs = self.filesystem
        if fs is None or fs.rootdirectory is None:
            return self
        return self.model_copy(
            update={"filesystem": fs.model_copy(update={"rootdirectory": fs.rootdirectory.absolute()})}
        )

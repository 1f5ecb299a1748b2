"""Building the configured StorageDriver from ``StorageSettings``: the one place that names concrete drivers."""

from __future__ import annotations

from pathlib import Path

from trustyard.storage.config import StorageSettings
from trustyard.storage.driver import Patience, StorageDriver
from trustyard.storage.filesystem import FilesystemDriver
from trustyard.storage.memory import MemoryDriver
from trustyard.storage.metered import MeteredDriver


def build_driver(settings: StorageSettings, default_root: Path, patience: Patience) -> StorageDriver:
    """The driver ``settings`` names (a filesystem driver under ``default_root`` when none is named), metered;
    a network driver waits for its store as ``patience`` says (driver.SERVING or driver.PROBING)."""
    return MeteredDriver(_backend(settings, default_root, patience))


def _backend(settings: StorageSettings, default_root: Path, patience: Patience) -> StorageDriver:
    if settings.driver == "inmemory":
        return MemoryDriver()
    if settings.s3 is not None:
        from trustyard.storage.s3 import S3Driver  # imported here: the S3 libraries load only when configured

        redirect = settings.s3.redirect and not settings.redirects_disabled
        return S3Driver.from_settings(settings.s3, redirect=redirect, patience=patience)
    if settings.swift is not None:
        from trustyard.storage.swift import SwiftDriver  # imported here, like S3: loads only when configured

        return SwiftDriver(
            settings.swift,
            redirect=settings.swift.redirect and not settings.redirects_disabled,
            attempts=patience.attempts,
            connect_timeout=patience.connect_timeout,
            timeout=patience.read_timeout,
        )
    fs = settings.filesystem
    root = fs.rootdirectory if fs is not None and fs.rootdirectory is not None else default_root
    root.mkdir(parents=True, exist_ok=True)
    return FilesystemDriver(root, direct_io=fs.directio if fs is not None else True)

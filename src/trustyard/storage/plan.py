"""``plan_driver``: the driver a storage plan serves from, given the active backend's driver and, while an
online migration copies, the fallback backend's (reads fall back to it for what is not copied yet).

This is the hook the migration plugs into (storage/fallback.py); without a fallback the active driver serves
everything.
"""

from __future__ import annotations

from trustyard.storage.driver import StorageDriver
from trustyard.storage.fallback import FallbackDriver


def plan_driver(active: StorageDriver, fallback: StorageDriver | None) -> StorageDriver:
    """The driver requests use under a plan of ``active`` (and ``fallback``, when a migration runs)."""
    return active if fallback is None else FallbackDriver(active, fallback)

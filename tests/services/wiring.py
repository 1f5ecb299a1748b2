"""How tests wire ``Services``: the production composition (``Services.create``, which takes every
collaborator) with what a test does not care about filled in: a throwaway token key and secret key, the
embedded default storage, no collection schedule, a plain-HTTP node on localhost, no serving worker."""

from __future__ import annotations

from pathlib import Path

from trustyard.auth.credential_cache import DEFAULT_TTL
from trustyard.auth.secretbox import SecretBox
from trustyard.auth.tokens import TokenAuthority, ephemeral_authority
from trustyard.db.index import Index
from trustyard.services import Services
from trustyard.services.gc import GcSchedule
from trustyard.services.info import Node
from trustyard.services.settings import StartupStorage
from trustyard.services.switch import WorkerIdentity
from trustyard.services.webhooks import EventSource
from trustyard.storage.config import StorageSettings
from trustyard.storage.driver import StorageDriver
from trustyard.storage.switchable import SwitchableDriver


def wire(
    index: Index,
    storage: StorageDriver,
    *,
    authority: TokenAuthority | None = None,
    startup: StartupStorage | None = None,
    box: SecretBox | None = None,
    node: Node | None = None,
    worker: WorkerIdentity | None = None,
) -> Services:
    return Services.create(
        index,
        storage if isinstance(storage, SwitchableDriver) else SwitchableDriver(storage),
        authority=authority or ephemeral_authority(),
        startup=startup or StartupStorage(StorageSettings(), None, Path("trustyard-data") / "storage"),
        box=box or SecretBox(SecretBox.new_key()),
        source=EventSource.local("localhost:5000", None),
        gc_schedule=GcSchedule(None),
        node=node or Node("localhost:5000", None, None, None),
        worker=worker,
        basic_auth_cache_ttl=DEFAULT_TTL,
        refresh_tokens=False,
    )

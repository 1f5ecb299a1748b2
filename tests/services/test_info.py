"""``InfoService``: the registry at a glance, over SQLite and PostgreSQL: what it holds (counted in SQL), the
certificate's names and expiry, the CA's fingerprint, the database without its password, the last collection;
site admins only."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from sqlalchemy.engine import make_url

from tests.services.test_gc import push_image
from tests.services.wiring import wire
from trustyard import __version__
from trustyard.auth.certificates import ensure_certificates
from trustyard.db.engine import migrate, open_index
from trustyard.errors import Denied
from trustyard.oci.names import RepositoryName
from trustyard.services import Services
from trustyard.services.actor import Actor, Credential
from trustyard.services.gc import GcOptions
from trustyard.services.info import NODES_NOTE, Node
from trustyard.services.settings import StartupStorage
from trustyard.storage import layout
from trustyard.storage.config import parse_storage_block
from trustyard.storage.memory import MemoryDriver

SYSTEM = Actor.system()


def _with_password(url: str) -> str:
    """The same database, with a password in the URL (PostgreSQL here trusts loopback, so it is not checked)."""
    parsed = make_url(url)
    return url if parsed.get_backend_name() == "sqlite" else parsed.set(password="s3cret-pw").render_as_string(False)


@pytest.fixture
def driver() -> MemoryDriver:
    return MemoryDriver()


@pytest.fixture
async def services(database_url: str, tmp_path: Path, driver: MemoryDriver) -> AsyncIterator[Services]:
    url = _with_password(database_url)
    await migrate(url)
    index = open_index(url)
    tls = ensure_certificates(tmp_path / "tls", ["registry.example", "127.0.0.1"])
    node = Node("0.0.0.0:5443", "https://registry.example:5443/", tls.cert, tls.ca_cert)
    try:
        yield wire(index, driver, node=node)
    finally:
        await index.dispose()


async def test_counts_what_the_registry_holds(services: Services, driver: MemoryDriver) -> None:
    await push_image(services, "1.0", b"layer one", b"layer two")
    await push_image(services, "2.0", b"layer one", b"layer three")
    await push_image(services, "1.0", b"layer one", repository=RepositoryName.parse("team/other"))

    counts = (await services.info.info(SYSTEM)).counts

    assert (counts.repositories, counts.tags, counts.manifests) == (2, 3, 3)
    # three layers, two configs (team/other:1.0 has 1.0's) and three manifests, each stored once
    stored = [data for key, (data, _) in driver.store.objects.items() if layout.blob_of(key) is not None]
    assert counts.blobs == len(stored) == 8
    assert counts.bytes == sum(len(data) for data in stored)


async def test_urls_tls_and_ca(services: Services, tmp_path: Path) -> None:
    found = await services.info.info(SYSTEM)

    assert found.version == __version__
    assert found.urls.registry == "https://registry.example:5443/v2/"
    assert found.urls.ca == "https://registry.example:5443/ca"
    assert found.urls.metrics == "https://registry.example:5443/metrics"
    assert found.urls.listen == "0.0.0.0:5443"
    assert found.tls is not None
    assert found.tls.facts is not None
    assert {"registry.example", "127.0.0.1"} <= set(found.tls.facts.names)
    assert timedelta(days=800) < found.tls.facts.not_after - datetime.now(UTC) < timedelta(days=826)
    ca = x509.load_pem_x509_certificate((tmp_path / "tls" / "ca.crt").read_bytes())
    assert found.tls.ca_fingerprint == ca.fingerprint(hashes.SHA256()).hex(":").upper()


async def test_database_without_its_password_and_at_the_latest_revision(services: Services) -> None:
    database = (await services.info.info(SYSTEM)).database

    assert "s3cret-pw" not in database.url
    if database.dialect == "postgresql":
        assert ":***@" in database.url
    assert database.revision is not None
    assert database.revision.startswith("0")


async def test_storage_nodes_and_the_last_collection(services: Services) -> None:
    found = await services.info.info(SYSTEM)
    assert found.storage.driver == "filesystem"
    assert found.last_gc is None
    assert [node.this for node in found.nodes] == [True]
    assert found.nodes[0].name.endswith(":5443")
    assert found.nodes_note == NODES_NOTE

    # A serving worker records itself (services/switch.py); info then lists the nodes seen lately.
    await index_workers_heartbeat(services)
    seen = (await services.info.info(SYSTEM)).nodes
    assert [(n.name.endswith(":5443"), n.this, n.workers) for n in seen] == [(True, True, 1), (False, False, 2)]
    assert seen[1].name == "other:5000"
    assert seen[1].versions == ("9.9",)

    run = await services.gc.run(SYSTEM, GcOptions(dry_run=True))

    last = (await services.info.info(SYSTEM)).last_gc
    assert last is not None
    assert (last.id, last.dry_run, last.status) == (run.id, True, "succeeded")
    assert (await services.info.info(SYSTEM)).as_document()["gc"]["last_run"]["id"] == run.id


async def test_plain_http_has_no_tls_section(database_url: str) -> None:
    await migrate(database_url)
    index = open_index(database_url)
    try:
        node = Node("127.0.0.1:5000", None, None, None)
        found = await wire(index, MemoryDriver(), node=node).info.info(SYSTEM)
    finally:
        await index.dispose()
    assert found.tls is None
    assert found.urls.ca is None
    assert found.urls.registry == "http://127.0.0.1:5000/v2/"
    assert found.as_document()["tls"] is None


async def test_only_site_admins(services: Services) -> None:
    user = Actor.user("alice", SYSTEM.allowed, Credential.PASSWORD, None, admin=False)
    with pytest.raises(Denied):
        await services.info.info(user)


async def test_storage_secrets_are_only_set_or_not_set(sqlite_url: str, tmp_path: Path) -> None:
    await migrate(sqlite_url)
    index = open_index(sqlite_url)
    s3 = {"bucket": "images", "region": "us-east-1", "accesskey": "AKIAEXAMPLE", "secretkey": "very-secret-key"}
    startup = StartupStorage(parse_storage_block({"s3": s3}), "config file", tmp_path / "storage")
    try:
        found = await wire(index, MemoryDriver(), startup=startup).info.info(SYSTEM)
    finally:
        await index.dispose()
    document = json.dumps(found.as_document())
    assert "very-secret-key" not in document
    assert found.storage.driver == "s3"
    assert found.storage.parameters["bucket"] == "images"
    assert found.as_document()["storage"]["secrets"]["secretkey"] == "set"


async def test_an_operators_certificate_without_a_ca_of_our_own(sqlite_url: str, tmp_path: Path) -> None:
    tls = ensure_certificates(tmp_path / "elsewhere", ["registry.example"])  # stands in for the operator's files
    await migrate(sqlite_url)
    index = open_index(sqlite_url)
    try:
        node = Node("127.0.0.1:5443", None, tls.cert, tmp_path / "data" / "tls" / "ca.crt")
        found = await wire(index, MemoryDriver(), node=node).info.info(SYSTEM)
    finally:
        await index.dispose()
    assert found.tls is not None
    assert found.tls.facts is not None
    assert found.tls.facts.names == ["registry.example"]
    assert found.tls.ca_fingerprint is None
    assert found.urls.ca is None
    assert found.urls.registry == "https://127.0.0.1:5443/v2/"


async def index_workers_heartbeat(services: Services) -> None:
    """One worker of this node and two of another node heartbeat."""
    from trustyard.db.workers import WorkerRow

    this = services.info._node.name
    at = datetime.now(UTC)
    for name, pid, version in ((this, 1, "0.1.0"), ("other:5000", 2, "9.9"), ("other:5000", 3, "9.9")):
        await services.info._index.workers.heartbeat(WorkerRow(f"{name}:{pid}", name, pid, version, at, at, 0))

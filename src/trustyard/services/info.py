"""``trustyard info``: the operator's view of one registry in one value (``Info``): version, the URLs it serves,
its TLS certificate and CA, storage (secrets masked), database, what it holds, the nodes seen, the last
collection. The edges (CLI, admin API, web UI) only render it."""

from __future__ import annotations

import datetime as dt
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trustyard import __version__
from trustyard.auth.certificates import CertificateFacts, describe, fingerprint
from trustyard.db.gc_runs import GcRunRow
from trustyard.db.index import Index
from trustyard.db.info import DatabaseInfo, database_info
from trustyard.db.workers import WorkerRow
from trustyard.services.actor import Actor
from trustyard.services.gc import GarbageCollector
from trustyard.services.settings import Settings, StorageView

#: Said beside the node list when no worker has recorded itself (no server ran against this database lately).
NODES_NOTE = "no server has served lately: this lists only the node these settings describe"
#: A node is listed when one of its workers heartbeat within this long (db/workers.py).
NODES_SEEN_WITHIN = dt.timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Node:
    """What this node's settings say about it (app.py builds it): where it listens, the URL clients use, and
    the certificate files it serves (``None``: plain HTTP, TLS is terminated in front)."""

    listen: str  # host:port
    public_url: str | None
    server_cert: Path | None
    ca_cert: Path | None  # the registry's own CA (served at /ca); None with an operator's certificate alone

    @property
    def name(self) -> str:
        """How workers, webhook events and ``info`` name this node: its public address, else host and port."""
        if self.public_url:
            return self.public_url.split("://", 1)[-1].rstrip("/")
        return f"{socket.gethostname()}:{self.listen.rpartition(':')[2]}"

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host, _, port = self.listen.rpartition(":")
        host = host.strip("[]")
        if host in ("", "0.0.0.0", "::"):
            host = socket.gethostname()  # the generated certificate covers it
        elif ":" in host:
            host = f"[{host}]"
        return f"{'https' if self.server_cert else 'http'}://{host}:{port}"


@dataclass(frozen=True, slots=True)
class Urls:
    listen: str
    public_url: str | None
    registry: str  # /v2/
    ca: str | None  # /ca, when the registry has its own CA
    metrics: str
    web: str


@dataclass(frozen=True, slots=True)
class Tls:
    certificate: Path
    facts: CertificateFacts | None  # None: not created yet (serve creates it on first start)
    ca: Path | None
    ca_fingerprint: str | None  # SHA-256, as `trustyard ca` prints it


@dataclass(frozen=True, slots=True)
class Counts:
    repositories: int
    tags: int
    manifests: int
    blobs: int
    bytes: int  # the size of every blob stored (each blob once, however many repositories link it)


@dataclass(frozen=True, slots=True)
class NodeSeen:
    name: str  # the public address, else host:port
    listen: str  # this node's listen address; "" for other nodes
    this: bool
    workers: int = 0  # worker processes seen within NODES_SEEN_WITHIN (0: none has recorded itself)
    versions: tuple[str, ...] = ()  # trustyard versions its workers run
    last_seen: str | None = None  # ISO time of its latest heartbeat


@dataclass(frozen=True, slots=True)
class Info:
    version: str
    urls: Urls
    tls: Tls | None  # None: plain HTTP behind a TLS-terminating proxy
    storage: StorageView
    database: DatabaseInfo
    counts: Counts
    nodes: list[NodeSeen]
    nodes_note: str
    gc_running: bool
    last_gc: GcRunRow | None

    def as_document(self) -> dict[str, Any]:
        """Plain JSON-able data (the CLI's --json and the admin API)."""
        tls = self.tls
        facts = tls.facts if tls else None
        last = self.last_gc
        return {
            "version": self.version,
            "urls": asdict(self.urls),
            "tls": None
            if tls is None
            else {
                "certificate": str(tls.certificate),
                "names": facts.names if facts else [],
                "not_after": facts.not_after.isoformat() if facts else None,
                "ca": str(tls.ca) if tls.ca else None,
                "ca_fingerprint": tls.ca_fingerprint,
            },
            "storage": self.storage.as_document(),
            "database": asdict(self.database),
            "counts": asdict(self.counts),
            "nodes": [{**asdict(node), "versions": list(node.versions)} for node in self.nodes],
            "nodes_note": self.nodes_note,
            "gc": {
                "running": self.gc_running,
                "last_run": None
                if last is None
                else {
                    "id": last.id,
                    "status": last.status,
                    "started_at": last.started_at.isoformat(),
                    "finished_at": last.finished_at.isoformat() if last.finished_at else None,
                    "started_by": last.started_by,
                    "dry_run": last.dry_run,
                    "report": last.report,
                    "error": last.error,
                },
            },
        }


COUNTED = ("repositories", "tags", "manifests", "blobs", "bytes")


class InfoService:
    def __init__(self, node: Node, index: Index, settings: Settings, gc: GarbageCollector) -> None:
        self._node = node
        self._index = index
        self._settings = settings
        self._gc = gc

    async def info(self, actor: Actor) -> Info:
        """Everything about this registry an operator looks up (site admins only: it names paths and hosts)."""
        actor.require_admin()
        counts = await self._index.counts()
        gc = await self._gc.status(actor, 1)
        return Info(
            version=__version__,
            urls=self._urls(),
            tls=self._tls(),
            storage=await self._settings.storage(actor),
            database=await database_info(self._index.reader),
            counts=Counts(**{name: counts[name] for name in COUNTED}),
            nodes=(nodes := await self._nodes()),
            nodes_note=NODES_NOTE if not any(n.workers for n in nodes) else _seen_note(),
            gc_running=gc.running,
            last_gc=gc.runs[0] if gc.runs else None,
        )

    async def _nodes(self) -> list[NodeSeen]:
        """The nodes whose workers heartbeat lately (this one first), else this node as its settings say."""
        this = self._node.name
        by_node: dict[str, list[WorkerRow]] = {}
        for worker in await self._index.workers.recent(NODES_SEEN_WITHIN):
            by_node.setdefault(worker.node, []).append(worker)
        found = [] if this in by_node else [NodeSeen(this, self._node.listen, this=True)]
        for name, workers in sorted(by_node.items(), key=lambda item: (item[0] != this, item[0])):
            found.append(
                NodeSeen(
                    name,
                    self._node.listen if name == this else "",
                    this=name == this,
                    workers=len(workers),
                    versions=tuple(sorted({w.version for w in workers})),
                    last_seen=max(w.seen_at for w in workers).isoformat(),
                )
            )
        return found

    def _urls(self) -> Urls:
        base = self._node.base_url
        ca = self._node.ca_cert
        return Urls(
            listen=self._node.listen,
            public_url=self._node.public_url,
            registry=f"{base}/v2/",
            ca=f"{base}/ca" if ca is not None and ca.exists() else None,
            metrics=f"{base}/metrics",
            web=f"{base}/",
        )

    def _tls(self) -> Tls | None:
        cert, ca = self._node.server_cert, self._node.ca_cert
        if cert is None:
            return None
        facts = describe(cert.read_bytes()) if cert.exists() else None
        if ca is None or not ca.exists():  # an operator's certificate without the registry's own CA
            return Tls(cert, facts, None, None)
        return Tls(cert, facts, ca, fingerprint(ca.read_bytes()))


def _seen_note() -> str:
    minutes = int(NODES_SEEN_WITHIN.total_seconds() // 60)
    return f"nodes whose workers were seen within the last {minutes} minutes"


def expires_in(not_after: dt.datetime) -> dt.timedelta:
    """How long until a certificate expires (negative once it has)."""
    return not_after - dt.datetime.now(dt.UTC)

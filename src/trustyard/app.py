"""The one composition root: builds the storage driver, the SQL index and ``Services`` from ``Settings``,
and mounts the edges into one ASGI application.

``trustyard serve`` runs ``worker_app`` in each Granian worker process; settings reach the workers as JSON
in ``TRUSTYARD_WORKER_SETTINGS`` so every worker runs exactly what the parent resolved.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from ipaddress import ip_network
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from trustyard import __version__, errors
from trustyard.admin import errors as admin_errors
from trustyard.admin.routes import PREFIX as ADMIN_PREFIX
from trustyard.admin.routes import routes as admin_routes
from trustyard.auth.certificates import TlsFiles, default_names, ensure_certificates
from trustyard.auth.proxies import parse_networks
from trustyard.auth.secretbox import SecretBox
from trustyard.auth.tokens import TokenAuthority, ensure_signing_key, load_signing_key, signing_key_from_pem
from trustyard.config import Settings
from trustyard.db.backup import copy_index
from trustyard.db.engine import migrate, open_index
from trustyard.db.index import Index
from trustyard.edge import Edge
from trustyard.monitoring.routes import routes as monitoring_routes
from trustyard.registry import errors as registry_errors
from trustyard.registry.dispatch import ExceptionHandler, V2Dispatch
from trustyard.registry.routes import routes as registry_routes
from trustyard.services import Services
from trustyard.services.backup import Backups
from trustyard.services.gc import GcSchedule
from trustyard.services.info import Node
from trustyard.services.settings import StartupStorage
from trustyard.services.shared_secrets import NodeKeys, SharedSecrets
from trustyard.services.switch import HEARTBEAT_SECONDS, POLL_SECONDS, WorkerIdentity
from trustyard.services.webhooks import EventSource
from trustyard.storage.driver import SERVING
from trustyard.storage.factory import build_driver
from trustyard.storage.switchable import SwitchableDriver
from trustyard.web import errors as web_errors
from trustyard.web.routes import routes as web_routes

WORKER_SETTINGS_ENV = "TRUSTYARD_WORKER_SETTINGS"
#: The PID of ``trustyard serve``: a worker whose parent is no longer that process exits.
SERVE_PID_ENV = "TRUSTYARD_SERVE_PID"
PARENT_POLL_SECONDS = 0.5
WORKER_EXIT_GRACE_SECONDS = 10.0
log = logging.getLogger("trustyard")


SERVICE = "trustyard"  # the token ``service`` and ``aud``
#: How often each worker looks for webhook endpoints saved by another worker or node (storage has its own,
#: faster poll and a fence: services/switch.py).
SETTINGS_POLL_SECONDS = 2.0
#: How often each worker looks whether a scheduled garbage collection or the hourly upkeep is due.
GC_SCHEDULE_CHECK_SECONDS = 60.0
#: What a node without a secret key says when the database already holds the cluster's sealed secrets.
NO_SECRET_KEY = (
    "this node has no secret key, but the database already holds secrets sealed by the node that started first: "
    "give every node the same key, in TRUSTYARD_SECRET_KEY or in the file named by secret_key_file "
    "(a key trustyard generated is in the first node's DATA_DIR/keys/secret.key)"
)
NOT_PREPARED = (
    "the secret key or the shared keys are not there yet: `trustyard serve` (or any trustyard command) "
    "creates them on its first start"
)


@dataclass(frozen=True)
class Startup:
    """What first start created: the admin password to show once (None when given or existing), TLS files."""

    admin_password: str | None
    tls: TlsFiles | None


async def prepare(settings: Settings, *, serving: bool = False) -> Startup:
    """One-time start-up work done once per node before workers start: data dir, schema, the secret key and
    the cluster's shared keys (services/shared_secrets.py); when ``serving``, also the TLS certificate and the
    ``admin`` account (created only where its password can be shown: by ``serve``, never by a maintenance
    command). A node whose secret key does not open the cluster's keys stops here, before serving."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.data_dir.chmod(0o700)  # keys, the index and (by default) the blobs live here
    await migrate(settings.database)
    if settings.token_key is not None:
        ensure_signing_key(settings.token_key)  # the operator's own file: authoritative for this node
    index = open_index(settings.database)
    try:
        box = await ensure_secret_box(settings, index)
        await SharedSecrets(index.shared_secrets, box, process_name()).ensure(settings.keys_dir)
    finally:
        await index.dispose()
    if not serving:
        return Startup(None, None)
    tls = tls_files(settings)
    async with open_services(settings) as services:
        given = settings.admin_password.get_secret_value() if settings.admin_password else None
        generated = await services.users.bootstrap_admin(given)
        await services.webhooks.sync_config(settings.notifications)
        await services.webhooks.recover()
    return Startup(generated, tls)


def tls_files(settings: Settings) -> TlsFiles | None:
    """The certificate and key to serve: the operator's, else the registry's own CA's (created when missing)."""
    if settings.insecure_http:
        return None
    if settings.tls_cert or settings.tls_key:
        if not (settings.tls_cert and settings.tls_key):  # flags bypass the settings validator
            raise errors.ConfigInvalid("--tls-cert and --tls-key go together: give both or neither")
        return TlsFiles(settings.tls_dir / "ca.crt", settings.tls_cert, settings.tls_key)
    host, _ = settings.host_port
    listen = [] if host in ("0.0.0.0", "::") else [host]
    return ensure_certificates(settings.tls_dir, default_names([*listen, *settings.public_names]))


async def rotate_shared_keys(settings: Settings) -> NodeKeys:
    """``trustyard keys rotate``: new shared keys in the database (services/shared_secrets.py). Nodes read them
    when they start; ``settings.token_key``, when set, still signs this node's tokens."""
    index = open_index(settings.database)
    try:
        box = secret_box(settings)
        shared = None if box is None else SharedSecrets(index.shared_secrets, box, process_name())
        if shared is None or await shared.keys() is None:  # keys() also refuses a secret key that is not theirs
            raise errors.ConfigInvalid(NOT_PREPARED)
        return await shared.rotate(settings.keys_dir, settings.token_key)
    finally:
        await index.dispose()


def token_authority(settings: Settings, keys: NodeKeys) -> TokenAuthority:
    """Signs and verifies registry tokens with the operator's ``token_key`` file when one is configured, else
    with the cluster's key from the database."""
    if settings.token_key is not None:
        key = load_signing_key(settings.token_key)
    else:
        key = signing_key_from_pem(keys.token_key, "the token signing key in the database")
    return TokenAuthority(key, SERVICE, SERVICE, settings.token_ttl, settings.refresh_token_ttl)


def process_name() -> str:
    """This process as the creator of a shared secret: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def secret_box(settings: Settings) -> SecretBox | None:
    """The operator's secret key: ``secret_key`` (TRUSTYARD_SECRET_KEY), else the file ``secret_key_file`` or
    DATA_DIR/keys/secret.key; None when neither is there."""
    if settings.secret_key is not None:
        return SecretBox(settings.secret_key.get_secret_value().strip().encode())
    path = settings.secret_key_path
    return SecretBox(path.read_bytes().strip()) if path.exists() else None


async def ensure_secret_box(settings: Settings, index: Index) -> SecretBox:
    """The operator's secret key; on the first start of a registry given none, a generated
    DATA_DIR/keys/secret.key (the embedded default keeps working with no flags). A node given none that joins
    a database whose secrets another node sealed, or given a ``secret_key_file`` that is not there, is refused:
    a key of its own could never open them."""
    box = secret_box(settings)
    if box is not None:
        return box
    if settings.secret_key_file is not None:
        raise errors.ConfigInvalid(
            f"secret_key_file {settings.secret_key_file} does not exist: put the cluster's secret key there "
            "(the first node's DATA_DIR/keys/secret.key, or a new one on a first start), or unset secret_key_file"
        )
    if await index.shared_secrets.any():
        raise errors.ConfigInvalid(NO_SECRET_KEY)
    ensure_secret_key(settings.secret_key_path)
    return SecretBox(settings.secret_key_path.read_bytes().strip())


def ensure_secret_key(path: Path) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process of this node created it first
    with os.fdopen(descriptor, "wb") as file:
        file.write(SecretBox.new_key())


@asynccontextmanager
async def open_services(settings: Settings, *, serving: bool = False) -> AsyncIterator[Services]:
    """Services over the configured index and storage; the storage saved at run time (if any) replaces the
    startup storage before anything is served. A ``serving`` worker registers itself in ``workers``."""
    async with open_node(settings, serving=serving) as (services, _keys):
        yield services


@asynccontextmanager
async def open_node(settings: Settings, *, serving: bool = False) -> AsyncIterator[tuple[Services, NodeKeys]]:
    """``open_services``, and the cluster's shared keys in the clear. ``prepare`` must have run on this data
    directory and database: it makes the secret key and the shared keys this needs."""
    index = open_index(settings.database)
    pinned_by = None if settings.storage_source == "default" else settings.storage_source
    startup = StartupStorage(settings.storage, pinned_by, settings.default_storage_root)
    driver = SwitchableDriver(build_driver(settings.storage, settings.default_storage_root, SERVING))
    box = secret_box(settings)
    source = EventSource.local(settings.listen, settings.public_url)
    try:
        keys = None if box is None else await SharedSecrets(index.shared_secrets, box, process_name()).keys()
        if box is None or keys is None:
            raise errors.ConfigInvalid(NOT_PREPARED)
        services = Services.create(
            index,
            driver,
            authority=token_authority(settings, keys),
            startup=startup,
            box=box,
            source=source,
            gc_schedule=GcSchedule.parse(settings.gc_every, settings.gc_untagged, settings.gc_grace),
            node=node(settings),
            worker=WorkerIdentity.here(node_name(settings), __version__) if serving else None,
            basic_auth_cache_ttl=settings.basic_auth_cache_ttl,
            refresh_tokens=settings.refresh_tokens,
        )
        try:
            await services.switch.refresh()
            await services.switch.register()
            await services.webhooks.refresh()
            yield services, keys
        finally:
            await services.adoption.close()
            await services.migrations.close()
            await services.webhooks.close()
            await services.switch.stop()
            await services.switch.close()  # every backend's driver, the startup one among them
    finally:
        await index.dispose()


def node_name(settings: Settings) -> str:
    """How ``workers`` names this node: its public address when configured, else host name and port."""
    return node(settings).name


def node(settings: Settings) -> Node:
    """What ``trustyard info`` says of this node: where it listens and which certificate files it serves."""
    if settings.insecure_http:
        return Node(settings.listen, settings.public_url, None, None)
    ca = settings.tls_dir / "ca.crt"
    return Node(settings.listen, settings.public_url, settings.tls_cert or settings.tls_dir / "server.crt", ca)


def backups(settings: Settings, services: Services, config_file: Path | None) -> Backups:
    """Backups of this node's index, data directory files and (filesystem) storage (docs/operations.md)."""
    database = settings.database
    return Backups(
        lambda destination: copy_index(database, destination), settings.data_dir, config_file, services.settings
    )


async def _follow_storage_plan(services: Services) -> None:
    """Per worker: read the storage plan every POLL_SECONDS (serving a new one at once, acking it) and
    heartbeat; a worker that cannot read it fences itself before serving (``edge.fence_storage``)."""
    last_heartbeat = time.monotonic()
    while True:
        await asyncio.sleep(POLL_SECONDS)
        try:
            await services.switch.refresh()
            if time.monotonic() - last_heartbeat >= HEARTBEAT_SECONDS:
                last_heartbeat = time.monotonic()
                await services.switch.heartbeat()
        except Exception:  # a database hiccup must not end the loop; the fence covers the gap
            log.warning("could not read the storage plan; retrying", exc_info=True)


async def _maintain(services: Services) -> None:
    """Per worker: pick up webhook endpoints saved elsewhere, run a pending storage adoption and resume a storage
    migration whose copier is gone, and look now and then whether a scheduled garbage collection or the hourly
    upkeep (abandoned uploads, the webhook log) is due: their leases in SQL let one worker of one node run each."""
    last_schedule = 0.0
    while True:
        await asyncio.sleep(SETTINGS_POLL_SECONDS)
        try:
            services.adoption.kick()
            await services.migrations.resume_if_orphaned()
            await services.webhooks.refresh()
            now = time.monotonic()
            if now - last_schedule > GC_SCHEDULE_CHECK_SECONDS:
                last_schedule = now
                await services.gc.run_if_due()
                await services.upkeep.run_if_due()
        except Exception:  # a database or storage hiccup must not end the loop
            log.exception("background maintenance failed; retrying")


def create_app(settings: Settings, *, migrate_first: bool = False) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if migrate_first:
            await prepare(settings, serving=True)
        ca = settings.tls_dir / "ca.crt"
        app.state.ca_pem = ca.read_bytes() if ca.exists() else None
        async with open_node(settings, serving=True) as (services, keys):
            app.state.session_key = keys.session_key
            app.state.services = services
            services.adoption.kick()
            background = [
                asyncio.create_task(_follow_storage_plan(services)),
                asyncio.create_task(_maintain(services)),
                asyncio.create_task(services.webhooks.run()),
            ]
            try:
                yield
            finally:
                for task in background:
                    task.cancel()
                # Let them finish before the engine closes: a webhook sender releases its lease on the way out,
                # so the next start (or another worker) resumes at once instead of after the lease runs out.
                await asyncio.gather(*background, return_exceptions=True)

    handlers: dict[type[Exception], ExceptionHandler] = {
        errors.TrustyardError: _domain_error,
        HTTPException: _http_error,
        ClientDisconnect: _body_cut_off,
    }
    app = Starlette(
        routes=[*monitoring_routes, *registry_routes, *admin_routes, *web_routes],
        lifespan=lifespan,
        exception_handlers=dict(handlers),
    )
    # What a request passes, outermost first: the edge (metrics, response headers, the request scope, the
    # storage fence, the body drain); then a /v2 request whose route matches goes straight to its handler, its
    # errors answered by the same handlers; everything else (and /v2 misses) to Starlette's own stack.
    app.middleware_stack = Edge(
        V2Dispatch(registry_routes, app.build_middleware_stack(), router=app.router, handlers=handlers),
        json_access_log=settings.access_log and settings.access_log_format == "json",
    )
    app.state.public_url = settings.public_url
    app.state.trusted_proxies = parse_networks(settings.trusted_proxies)
    app.state.monitoring_allow = tuple(ip_network(item, strict=False) for item in settings.metrics.allow)
    return app


def worker_app() -> Starlette:
    """Granian's factory target in each worker process."""
    settings = Settings.model_validate_json(os.environ[WORKER_SETTINGS_ENV])
    configure_logging(settings)
    if SERVE_PID_ENV in os.environ:
        threading.Thread(target=_exit_with_parent, args=(int(os.environ[SERVE_PID_ENV]),), daemon=True).start()
    return create_app(settings)


def _exit_with_parent(parent: int) -> None:
    """End this worker once ``trustyard serve`` is gone (killed with -9, say): an orphaned worker would go on
    serving, holding the port and the data dir, out of reach of any restart. Polling the parent PID is
    reliable where PR_SET_PDEATHSIG is not (it fires when the spawning *thread* ends)."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    log.warning("trustyard serve (pid %d) is gone; worker %d exits", parent, os.getpid())
    os.kill(os.getpid(), signal.SIGTERM)  # Granian's own graceful stop first
    time.sleep(WORKER_EXIT_GRACE_SECONDS)
    os._exit(1)


#: Libraries that log at INFO or DEBUG per request or per statement (httpx one line per Swift request,
#: SQLAlchemy's echo ~930 lines at start): WARNING unless ``log_level: trace`` or ``loggers`` asks.
LIBRARY_LOGGERS = (
    "httpx",
    "httpcore",
    "botocore",
    "aiobotocore",
    "boto3",
    "urllib3",
    "sqlalchemy",
    "alembic",
    "aiosqlite",
    "asyncio",
    "multipart",
)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(settings: Settings) -> None:
    """Logs go to standard error (the service manager keeps them: journald, docker logs)."""
    trace = settings.log_level == "trace"
    logging.basicConfig(format=LOG_FORMAT)
    logging.getLogger().setLevel(logging.DEBUG if trace else settings.log_level.upper())
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if trace else logging.WARNING)
    if trace:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)  # every statement (INFO is SQLAlchemy's echo)
    for name, level in settings.loggers.items():
        logging.getLogger(name).setLevel(level.upper())


async def _domain_error(request: Request, exc: Exception) -> Response:
    """Each edge maps domain errors its own way: the admin API in JSON of its own, the rest as /v2 does."""
    if request.url.path.startswith(ADMIN_PREFIX):
        return await admin_errors.handle(request, exc)
    return await registry_errors.handle(request, exc)


async def _body_cut_off(request: Request, exc: Exception) -> Response:
    """The request body ended early: the client went away (an interrupted push, Ctrl-C) or its chunked
    encoding was invalid. Normal on a network, so INFO and no traceback; an upload keeps what its earlier
    requests stored and resumes from there. The answer reaches clients that are still listening."""
    log.info("%s %s: the request body ended before it was complete", request.method, request.url.path)
    message = "the request body ended early (connection closed, or invalid chunked encoding); nothing of it was kept"
    error: errors.TrustyardError
    if "/blobs/uploads" in request.url.path:
        error = errors.BlobUploadInvalid(f"{message}; ask for the upload's status and resume")
    elif "/manifests/" in request.url.path:
        error = errors.ManifestInvalid(message)
    else:
        error = errors.InvalidRequest(message)
    return await _domain_error(request, error)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})  # keeps Allow on 405
    if exc.status_code == 405:
        error: errors.TrustyardError = errors.Unsupported(f"{request.method} is not supported on {request.url.path}")
    elif exc.status_code == 404 and not request.url.path.startswith(("/v2", "/auth/", ADMIN_PREFIX)):
        return await web_errors.not_found(request)  # a person's browser: a page, not a JSON error
    elif exc.status_code == 404:
        error = errors.NameUnknown(f"no such endpoint: {request.url.path}")
    else:
        return Response(str(exc.detail), status_code=exc.status_code, headers=headers)
    return registry_errors.error_response(request, error, headers)

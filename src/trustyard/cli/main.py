"""``trustyard`` commands. Flags map onto ``Settings``; every command builds services through ``app``."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import click

from trustyard import __version__, metrics
from trustyard.app import SERVE_PID_ENV, WORKER_SETTINGS_ENV, Startup, configure_logging, open_services, prepare
from trustyard.cli import accounts, backup, gc, keys, lock, policies, storage, webhooks
from trustyard.cli.ca import ca, ca_fingerprint
from trustyard.cli.info import info
from trustyard.cli.launch import Launch
from trustyard.config import Settings, load_settings
from trustyard.errors import TrustyardError
from trustyard.services.actor import Actor

CONFIG = click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="YAML config file (Distribution's storage: block accepted).",
)
DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Data directory (default ./trustyard-data): SQLite index and filesystem blobs.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="trustyard")
def main() -> None:
    """trustyard: a self-hosted, trusted container registry."""


@main.command()
@CONFIG
@DATA_DIR
@click.option("--listen", help="HOST:PORT to listen on (default 0.0.0.0:5000).")
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes (default: one per CPU core).")
@click.option(
    "--insecure-http",
    is_flag=True,
    default=None,
    help="Serve plain HTTP, only behind a proxy that terminates TLS (set public_url to its https URL).",
)
@click.option("--tls-cert", type=click.Path(path_type=Path, dir_okay=False, exists=True), help="Certificate (PEM).")
@click.option("--tls-key", type=click.Path(path_type=Path, dir_okay=False, exists=True), help="Its private key.")
def serve(
    config_file: Path | None,
    data_dir: Path | None,
    listen: str | None,
    workers: int | None,
    insecure_http: bool | None,
    tls_cert: Path | None,
    tls_key: Path | None,
) -> None:
    """Run the registry (OCI Distribution v1.1 and Docker Registry v2 at /v2/) over TLS with token auth."""
    settings = _settings(
        config_file,
        data_dir=data_dir,
        listen=listen,
        workers=workers,
        insecure_http=insecure_http,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
    configure_logging(settings)
    lock.hold_data_dir(settings.data_dir)  # for this process's lifetime: one registry per data dir
    lock.check_address_free(*settings.host_port)
    # Before anything is measured: every worker (forked from here) writes its metrics beside the others.
    metrics.enable_multiprocess(settings.metrics_dir.absolute())
    startup: Startup = _run(_prepare_and_adopt(settings))

    host, port = settings.host_port
    # The admin password stays in this process: workers get the rest of the settings.
    settings = settings.with_absolute_paths().model_copy(update={"admin_password": None})
    os.environ[WORKER_SETTINGS_ENV] = settings.for_workers()
    os.environ[SERVE_PID_ENV] = str(os.getpid())  # workers exit when this process is gone
    # Granian resolves its import target against the working directory and treats a directory holding an
    # __init__.py as a package to import from; start it from the data directory, which is ours.
    os.chdir(settings.data_dir)
    scheme = "http" if startup.tls is None else "https"
    click.echo(
        f"trustyard {__version__} listening on {scheme}://{settings.listen} "
        f"({settings.worker_count} workers, data in {settings.data_dir.resolve()})",
        err=True,
    )
    if startup.tls is not None and startup.tls.ca_cert.exists():
        click.echo(f"clients trust the CA from {scheme}://HOST:{port}/ca (also {startup.tls.ca_cert})", err=True)
        click.echo(f"CA SHA-256 fingerprint: {ca_fingerprint(startup.tls.ca_cert)}", err=True)
    if startup.admin_password is not None:
        _announce_admin_password(startup.admin_password)
    trace = settings.log_level == "trace"
    lock.keep_across_exec()
    # From here on this process only supervises Granian: it becomes the thin launcher (same pid, lock kept).
    Launch(
        host=host,
        port=port,
        workers=settings.worker_count,
        log_level="debug" if trace else settings.log_level,
        root_level="DEBUG" if trace else settings.log_level.upper(),
        loggers=dict(settings.loggers),
        access_log=settings.access_log and settings.access_log_format == "text",
        tls_cert=None if startup.tls is None else str(startup.tls.cert),
        tls_key=None if startup.tls is None else str(startup.tls.key),
    ).exec()


def _announce_admin_password(password: str) -> None:
    """Shown once, on standard error: the terminal, or the log, which goes there too (``configure_logging``:
    journald, ``docker logs``). Not through ``logging`` as well, which printed it twice on one terminal, and a
    log level above WARNING would have hidden it. It is stored only as an argon2 hash."""
    click.echo(
        f"created user admin with password: {password}  (shown once; change it with `trustyard admin reset-password`)",
        err=True,
    )


async def _prepare_and_adopt(settings: Settings) -> Startup:
    """Migrate, and adopt an existing root automatically when the index is empty (the bucket outlives us): the
    workers index it in the background while serving what is indexed so far."""
    startup = await prepare(settings, serving=True)
    async with open_services(settings) as services:
        if await services.adoption.begin_if_unindexed(Actor.system()):
            click.echo(
                "index is empty: adopting the repositories storage holds in the background "
                "(progress: trustyard storage status)",
                err=True,
            )
        # Only where nothing else can be writing: one node (SQLite) whose data-dir lock we hold. Nodes sharing
        # PostgreSQL leave staged leftovers to garbage collection, which waits an hour before taking them.
        one_node = settings.database.startswith("sqlite")
        swept = await services.uploads.sweep_interrupted(Actor.system()) if one_node else 0
        if swept:
            click.echo(f"removed {swept} staged files that interrupted uploads left behind", err=True)
    return startup


def _settings(config_file: Path | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config_file, **overrides)
    except TrustyardError as exc:
        raise click.ClickException(exc.message) from None


def _run(coroutine: Any) -> Any:
    try:
        return asyncio.run(coroutine)
    except TrustyardError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)


for _command in (
    *accounts.COMMANDS,
    storage.storage,
    backup.backup,
    webhooks.webhook,
    ca,
    keys.keys,
    info,
    gc.gc,
    policies.policy,
):
    main.add_command(_command)

"""``trustyard backup DEST``: a copy of a serving registry, laid out as a data directory (restore it by
serving it, or copying it into place); docs/operations.md says what it holds and how to restore."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from trustyard.app import backups, open_services, prepare
from trustyard.cli.command import CONFIG, DATA_DIR, JSON, done, settings
from trustyard.errors import TrustyardError
from trustyard.services.actor import Actor
from trustyard.services.backup import BackupReport


@click.command()
@CONFIG
@DATA_DIR
@click.argument("destination", type=click.Path(path_type=Path, file_okay=False))
@click.option("--no-storage", is_flag=True, help="Leave filesystem storage out (copy it yourself, e.g. rsync).")
@JSON
def backup(config_file: Path | None, data_dir: Path | None, destination: Path, no_storage: bool, as_json: bool) -> None:
    """Back up the index (SQLite online backup, or pg_dump), keys, TLS, config and filesystem storage into
    DESTINATION, while the registry keeps serving."""
    configured = settings(config_file, data_dir)

    async def go() -> BackupReport:
        await prepare(configured)
        async with open_services(configured) as services:
            chosen = backups(configured, services, config_file)
            return await chosen.write(Actor.system(), destination, with_storage=not no_storage)

    try:
        report = asyncio.run(go())
    except TrustyardError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
    copied = ", ".join([report.index, *report.copied])
    done(
        as_json,
        f"backed up to {report.destination}: {copied}; {report.storage}",
        destination=str(report.destination),
        index=report.index,
        copied=report.copied,
        storage=report.storage,
    )

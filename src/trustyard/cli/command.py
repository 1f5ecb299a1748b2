"""What every operator command shares: the options that find the server's data (``--config``,
``--data-dir``, ``TRUSTYARD_*``, the way ``serve`` finds it), running one service call as the operator, and
reporting the outcome: one sentence for a person, or JSON with ``--json`` for a script."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from trustyard.app import open_services, prepare
from trustyard.config import Settings, load_settings
from trustyard.errors import TrustyardError
from trustyard.services import Services
from trustyard.services.actor import Actor

T = TypeVar("T")

CONFIG = click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The server's YAML config file (as given to serve).",
)
DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="The server's data directory (default: TRUSTYARD_DATA_DIR, the config's data_dir, else ./trustyard-data).",
)
JSON = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (for scripts).")


def settings(config_file: Path | None, data_dir: Path | None, *, may_create: bool = False) -> Settings:
    """The server's settings, found the way ``serve`` finds them; a data directory that does not exist is
    refused (a command run from the wrong directory would otherwise start an empty registry of its own),
    unless the command ``may_create`` one (``storage reindex`` adopting a root into a new data directory)."""
    try:
        found = load_settings(config_file, data_dir=data_dir)
    except TrustyardError as exc:
        raise click.ClickException(exc.message) from None
    if not may_create and not found.data_dir.is_dir():
        raise click.ClickException(
            f"no trustyard data in {found.data_dir.absolute()}: run this where you ran `trustyard serve`, "
            "or name the server's data with --data-dir DIR, --config FILE or TRUSTYARD_DATA_DIR"
        )
    return found


def run(
    config_file: Path | None,
    data_dir: Path | None,
    call: Callable[[Services, Actor], Awaitable[T]],
    *,
    may_create: bool = False,
) -> T:
    """Run one service call as the operator (``system``) against the server's index and storage."""

    async def go(configured: Settings) -> T:
        async with open_services(configured) as services:
            return await call(services, Actor.system())

    return run_prepared(settings(config_file, data_dir, may_create=may_create), go)


def run_prepared(configured: Settings, call: Callable[[Settings], Awaitable[T]]) -> T:
    """``call`` once the data directory is prepared (schema up to date, keys made), as every command runs; a
    domain error ends the command with its message and status 1."""

    async def go() -> T:
        await prepare(configured)
        return await call(configured)

    try:
        return asyncio.run(go())
    except TrustyardError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)


def show(value: Any) -> None:
    """Print data as indented JSON (listings, reports)."""
    click.echo(json.dumps(value, indent=2, default=str))


def done(as_json: bool, sentence: str, **result: Any) -> None:
    """Say what a command did: ``sentence`` for a person, or ``result`` as one JSON object for a script."""
    if as_json:
        click.echo(json.dumps(result, default=str))
    else:
        click.echo(sentence)

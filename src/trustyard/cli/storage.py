"""``trustyard storage``: show, test and set the storage backend (as Settings > Storage and the admin API do),
follow the background adoption of what it holds (``status``, ``adopt``), migrate every image to another
backend (``migrate``), and rebuild the SQL index from what storage holds. ``set`` returns once every running
server serves the new backend."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import click
import yaml
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from trustyard.cli.command import CONFIG, DATA_DIR, run, show
from trustyard.errors import ConfigInvalid
from trustyard.services import Services
from trustyard.services.actor import Actor
from trustyard.services.adoption import AdoptionView
from trustyard.services.migration import MigrationRow
from trustyard.storage.config import StorageSettings, parse_storage_block

FROM_FILE = click.option(
    "--from-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="A Distribution-style storage: block (YAML or JSON).",
)
DRIVER = click.option("--driver", type=click.Choice(["filesystem", "s3", "swift"]), help="The backend.")
PARAMS = click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A driver parameter (Distribution's names); KEY=env:VAR reads the value from the environment.",
)


@click.group()
def storage() -> None:
    """The storage backend: show, test, set; follow its adoption; reindex."""


@storage.command("show")
@CONFIG
@DATA_DIR
def show_storage(config_file: Path | None, data_dir: Path | None) -> None:
    """The storage backend in use, where its settings come from; secrets only as set / not set."""
    view = run(config_file, data_dir, lambda services, actor: services.settings.storage(actor))
    show(view.as_document())


@storage.command("test")
@CONFIG
@DATA_DIR
@FROM_FILE
@DRIVER
@PARAMS
def test_storage(
    config_file: Path | None, data_dir: Path | None, from_file: Path | None, driver: str | None, params: tuple[str, ...]
) -> None:
    """Probe storage settings (write, stat, read, delete a probe object) without saving them."""
    candidate = _candidate(from_file, driver, params)
    run(config_file, data_dir, lambda services, actor: services.settings.test_storage(actor, candidate))
    click.echo(f"ok: the {candidate.driver} backend passed the probe")


@storage.command("set")
@CONFIG
@DATA_DIR
@FROM_FILE
@DRIVER
@PARAMS
def set_storage(
    config_file: Path | None, data_dir: Path | None, from_file: Path | None, driver: str | None, params: tuple[str, ...]
) -> None:
    """Probe and save the storage backend; returns once every running server serves it. Its images are
    indexed in the background (follow with `trustyard storage status --wait`).

    Images already in the previous backend stay there (nothing is copied) and show again if you switch back.
    A secret left out keeps the one saved for the same backend.
    """
    candidate = _candidate(from_file, driver, params)
    view = run(config_file, data_dir, lambda services, actor: services.settings.save_storage(actor, candidate))
    show(view.as_document())


WAIT = click.option("--wait", is_flag=True, help="Follow it to the end with a progress display.")


@storage.command("status")
@CONFIG
@DATA_DIR
@WAIT
def adoption_status(config_file: Path | None, data_dir: Path | None, wait: bool) -> None:
    """How far indexing what the storage backend holds got (after a switch, or at first start)."""
    if wait:
        view = run(config_file, data_dir, lambda services, actor: _follow(services, actor))
        click.echo(summary(view))
        return
    view = run(config_file, data_dir, lambda services, actor: services.adoption.status(actor))
    show(view.as_document())


@storage.command("adopt")
@CONFIG
@DATA_DIR
@WAIT
def adopt(config_file: Path | None, data_dir: Path | None, wait: bool) -> None:
    """Index the storage backend again in the background (e.g. after a failed adoption); servers keep serving
    what is indexed so far. With --wait, follow it (and run it here when no server does)."""

    async def go(services: Services, actor: Actor) -> AdoptionView:
        view = await services.adoption.restart(actor)
        return await _follow(services, actor) if wait else view

    view = run(config_file, data_dir, go)
    click.echo(summary(view) if wait else f"adoption {view.as_document().get('id')} started in the background")


async def _follow(services: Services, actor: Actor) -> AdoptionView:
    """Show the running adoption's counts until it ends; run it in this process when no server holds it."""
    here = asyncio.create_task(services.adoption.run_pending(Actor.system()))
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("adopting", total=None)
        while True:
            view = await services.adoption.status(actor)
            progress.update(task, description=_counts(view))
            if view.adoption is None or view.adoption.state != "running":
                break
            await asyncio.sleep(0.3 if not here.done() else 1.0)
    await asyncio.gather(here, return_exceptions=True)  # a failure shows in the adoption's state and error
    return view


def _counts(view: AdoptionView) -> str:
    a = view.adoption
    if a is None:
        return "nothing to adopt"
    return (
        f"{a.state}: {a.objects_listed:,} objects listed, {a.repositories:,} repositories, "
        f"{a.manifests:,} manifests, {a.tags:,} tags, {a.blobs:,} blobs"
    )


def summary(view: AdoptionView) -> str:
    a = view.adoption
    if a is None:
        return "no adoption has run"
    line = f"adoption {a.id} of backend {a.generation} {_counts(view)}"
    if a.skipped:
        line += f" ({a.skipped:,} skipped: see the server log)"
    return line + (f"; error: {a.error}" if a.error else "")


@storage.command("migrate")
@CONFIG
@DATA_DIR
@click.option(
    "--to",
    "to",
    metavar="DRIVER|FILE",
    help="The backend to move to: filesystem, s3 or swift (with --param), or a file holding a storage: block.",
)
@PARAMS
@click.option("--status", "status_only", is_flag=True, help="Show how far the latest migration got, and stop.")
@click.option(
    "--cancel",
    is_flag=True,
    help="Stop the migration under way and go back to the backend it copies from, with what was pushed meanwhile.",
)
def migrate_storage(
    config_file: Path | None,
    data_dir: Path | None,
    to: str | None,
    params: tuple[str, ...],
    status_only: bool,
    cancel: bool,
) -> None:
    """Move every image to another backend while the registry serves: copy and verify each blob, manifest,
    tag and link, then switch every server to it. New pushes go to the new backend at once; reads fall back to
    the current one for what is not copied yet; it is left intact. Re-run to resume after a crash (a running
    server also resumes it). --cancel goes back to the current backend, copying back what was pushed since."""
    if status_only:
        state = run(config_file, data_dir, lambda services, actor: services.migrations.status(actor))
        show(state.document() if state is not None else {"state": "none"})
        return
    if cancel and (to or params):
        raise click.UsageError("--cancel takes no --to or --param: it goes back to where the migration started")
    candidate = _target(to, params) if to else None
    if candidate is None and params:
        raise click.UsageError("--param goes with --to DRIVER")

    async def migrate(services: Services, actor: Actor) -> MigrationRow:
        if cancel:
            await services.migrations.cancel(actor)
        # Copies (or rolls back) here, or follows the process that does, to the end.
        return await services.migrations.migrate(actor, candidate, bar.update)

    with MigrationBar() as bar:
        migration = run(config_file, data_dir, migrate)
    report = migration.report
    click.echo(f"migration {migration.id} {migration.state}: {report.get('summary', '')}")
    if migration.state == "done" and migration.failed:
        click.echo(f"{migration.failed} objects could not be copied: `trustyard storage migrate --status` lists them")


class MigrationBar:
    """A rich progress bar over a migration's bytes, with its objects, rate and time left."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[objects]}"),
            console=Console(stderr=True),
        )
        self._task = self._progress.add_task("copying", total=None, objects="")

    def __enter__(self) -> MigrationBar:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def update(self, migration: MigrationRow) -> None:
        total = max(migration.bytes_total, migration.bytes_done)
        objects = f"{migration.objects_done:,}/{max(migration.objects_total, migration.objects_done):,} objects"
        description = migration.state if migration.state != "copying" else f"copying {migration.phase}"
        self._progress.update(
            self._task, completed=migration.bytes_done, total=total, description=description, objects=objects
        )


def _target(to: str, params: tuple[str, ...]) -> StorageSettings:
    """``--to`` as a driver with its ``--param`` flags, or as a file holding a storage block."""
    if to in ("filesystem", "s3", "swift"):
        return _candidate(None, to, params)
    path = Path(to)
    if not path.is_file():
        raise click.UsageError(f"--to {to!r}: give filesystem, s3 or swift (with --param), or a storage block file")
    if params:
        raise click.UsageError("--param goes with --to DRIVER, not with a storage block file")
    return _candidate(path, None, ())


@storage.command()
@CONFIG
@DATA_DIR
def reindex(config_file: Path | None, data_dir: Path | None) -> None:
    """Rebuild the SQL index from what storage holds (Distribution's layout; adopts Distribution roots)."""
    # It may start a new data directory: adopting a Distribution root or a bucket begins here.
    report = run(config_file, data_dir, lambda services, actor: services.storage.reindex(actor), may_create=True)
    show(report.__dict__)


def _candidate(from_file: Path | None, driver: str | None, params: tuple[str, ...]) -> StorageSettings:
    try:
        if from_file is not None:
            if driver or params:
                raise ConfigInvalid("give either --from-file or --driver with --param, not both")
            return parse_storage_block(yaml.safe_load(from_file.read_text()))
        if driver is None:
            raise ConfigInvalid("say which backend: --driver filesystem|s3|swift (or --from-file FILE)")
        return parse_storage_block({driver: dict(_param(p) for p in params)})
    except ConfigInvalid as exc:
        raise click.UsageError(exc.message) from None
    except (OSError, yaml.YAMLError) as exc:
        raise click.UsageError(f"cannot read {from_file}: {exc}") from None


def _param(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigInvalid(f"--param {text!r}: expected KEY=VALUE")
    if value.startswith("env:"):
        name = value[len("env:") :]
        if name not in os.environ:
            raise ConfigInvalid(f"--param {key}: the environment variable {name} is not set")
        value = os.environ[name]
    return key, yaml.safe_load(value) if value in ("true", "false") or value.isdigit() else value

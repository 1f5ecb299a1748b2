"""``trustyard gc``: run garbage collection now (with a progress display and a summary), or show past runs.

Runs in-process as the operator against the configured index and storage, while servers keep serving; it
takes the same lease as scheduled runs, so it never overlaps another collector."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from trustyard.cli.command import CONFIG, DATA_DIR, run, show
from trustyard.errors import TrustyardError
from trustyard.services.gc import DEFAULT_GRACE, GcOptions, GcRunRow, parse_duration


def _duration(_ctx: click.Context, _param: click.Parameter, value: str | None) -> timedelta | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except TrustyardError as exc:
        raise click.BadParameter(exc.message) from None


@click.group(invoke_without_command=True)
@CONFIG
@DATA_DIR
@click.option("--dry-run", is_flag=True, help="Report what would be removed; remove nothing.")
@click.option("--untagged", is_flag=True, help="Also remove manifests no tag points at (and what only they use).")
@click.option(
    "--grace",
    callback=_duration,
    metavar="DURATION",
    help=f"Keep anything pushed or linked within this window, e.g. 30m, 2h (default {DEFAULT_GRACE}).",
)
@click.pass_context
def gc(
    ctx: click.Context,
    config_file: Path | None,
    data_dir: Path | None,
    dry_run: bool,
    untagged: bool,
    grace: timedelta | None,
) -> None:
    """Garbage collection: delete blobs, manifests and uploads nothing references, while the registry serves."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = (config_file, data_dir)  # `trustyard gc --data-dir D history` reads D too
        return
    options = GcOptions(dry_run=dry_run, untagged=untagged, grace=DEFAULT_GRACE if grace is None else grace)
    console = Console(stderr=True)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed:>9,} looked at"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def report(phase: str, done: int) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=None)
            progress.update(tasks[phase], completed=done)

        result = run(config_file, data_dir, lambda services, actor: services.gc.run(actor, options, report))
    click.echo(summary(result))


def summary(run_row: GcRunRow) -> str:
    r = run_row.report
    verb = "would remove" if run_row.dry_run else "removed"
    return (
        f"gc run {run_row.id} {run_row.status}{' (dry run)' if run_row.dry_run else ''}: {verb} "
        f"{r.get('tags', 0):,} expired tags, {r.get('blobs', 0):,} blobs, {r.get('manifests', 0):,} manifests, "
        f"{r.get('uploads', 0):,} upload sessions, "
        f"{r.get('links', 0):,} unused links, {r.get('orphans', 0):,} unrecorded leftovers; "
        f"{_bytes(int(r.get('bytes_freed', 0)))} {'to free' if run_row.dry_run else 'freed'} "
        f"in {float(r.get('seconds', 0)):.1f}s"
    )


def _bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


@gc.command("history")
@CONFIG
@DATA_DIR
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.pass_context
def history(ctx: click.Context, config_file: Path | None, data_dir: Path | None, limit: int) -> None:
    """Past runs, newest first, with what each removed (JSON)."""
    given_config, given_data = ctx.obj or (None, None)
    config_file, data_dir = config_file or given_config, data_dir or given_data
    status = run(config_file, data_dir, lambda services, actor: services.gc.status(actor, limit))
    show(
        {
            "running": status.running,
            "holder": status.holder,
            "runs": [
                {
                    "id": r.id,
                    "status": r.status,
                    "started_at": r.started_at,
                    "finished_at": r.finished_at,
                    "started_by": r.started_by,
                    "dry_run": r.dry_run,
                    "untagged": r.untagged,
                    "grace_seconds": r.grace_seconds,
                    "report": r.report,
                    "error": r.error,
                }
                for r in status.runs
            ],
        }
    )

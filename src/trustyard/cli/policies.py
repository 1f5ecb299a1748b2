"""``trustyard policy``: tag policies per repository pattern (immutable tags, retention rules), and the
retention plan: the tags the next garbage collection would remove."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from trustyard.cli.command import CONFIG, DATA_DIR, run, show
from trustyard.services.policies import TagPolicy


def _document(policy: TagPolicy) -> dict[str, Any]:
    return {
        "pattern": policy.pattern,
        "immutable": policy.immutable,
        "keep_last": policy.keep_last,
        "keep_days": policy.keep_days,
        "keep_tags": policy.keep_tags,
        "updated_by": policy.updated_by,
    }


@click.group()
def policy() -> None:
    """Tag policies per repository pattern (team/app, team/*, team/**, **): immutability and retention."""


@policy.command("list")
@CONFIG
@DATA_DIR
def list_policies(config_file: Path | None, data_dir: Path | None) -> None:
    policies = run(config_file, data_dir, lambda s, a: s.policies.policies(a))
    show([_document(p) for p in policies])


@policy.command("set")
@CONFIG
@DATA_DIR
@click.argument("pattern")
@click.option("--immutable/--mutable", default=False, help="Tags never move and are never deleted.")
@click.option("--keep-last", type=click.IntRange(min=0), help="Retention: keep the newest N tags.")
@click.option("--keep-days", type=click.IntRange(min=0), help="Retention: keep tags pushed within D days.")
@click.option("--keep-tags", metavar="GLOB", help="Retention: keep tags matching this glob (v*, release-*).")
def set_policy(
    config_file: Path | None,
    data_dir: Path | None,
    pattern: str,
    immutable: bool,
    keep_last: int | None,
    keep_days: int | None,
    keep_tags: str | None,
) -> None:
    """Set (replace) the policy of PATTERN. Without a --keep option it removes nothing."""

    async def call(services: Any, actor: Any) -> TagPolicy:
        parsed = TagPolicy.parse(pattern, immutable, keep_last, keep_days, keep_tags)
        saved: TagPolicy = await services.policies.put(actor, parsed)
        return saved

    show(_document(run(config_file, data_dir, call)))


@policy.command("delete")
@CONFIG
@DATA_DIR
@click.argument("pattern")
def delete_policy(config_file: Path | None, data_dir: Path | None, pattern: str) -> None:
    run(config_file, data_dir, lambda s, a: s.policies.delete(a, pattern))
    click.echo(f"deleted the tag policy of {pattern}")


@policy.command("plan")
@CONFIG
@DATA_DIR
def plan(config_file: Path | None, data_dir: Path | None) -> None:
    """The tags retention would remove now (a dry run: nothing is removed)."""
    expired = run(config_file, data_dir, lambda s, a: s.gc.retention_plan(a))
    show([{"repository": e.repository, "tag": e.tag, "pushed_at": e.pushed_at} for e in expired])

"""Retention: the tags tag policies say to remove, listed (a dry run) or removed. It runs before garbage
collection, which then frees what the removed tags alone used.

For each repository, every policy with retention rules whose pattern matches it keeps the newest
``keep_last`` tags, the tags pushed within ``keep_days`` days and the tags matching ``keep_tags``; a tag
goes when a matching policy with rules would not keep it and no matching policy keeps it. Immutable tags are
never removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from trustyard.db.index import Index
from trustyard.db.manifests import TagAge
from trustyard.errors import TrustyardError
from trustyard.oci.names import RepositoryName, Tag
from trustyard.services.actor import Actor
from trustyard.services.manifests import Manifests
from trustyard.services.policies import TagPolicies, TagPolicy

PAGE = 500


@dataclass(frozen=True, slots=True)
class Expired:
    repository: str
    tag: str
    pushed_at: datetime


class Retention:
    def __init__(self, index: Index, policies: TagPolicies, manifests: Manifests) -> None:
        self._index = index
        self._policies = policies
        self._manifests = manifests

    async def plan(self, actor: Actor) -> list[Expired]:
        """What applying retention now would remove (the dry run)."""
        actor.require_admin()
        policies = [p for p in await self._policies.all() if p.retains]
        if not policies:
            return []
        expired: list[Expired] = []
        after = ""
        while names := await self._index.repositories.names(after, PAGE):
            for name in names:
                applying = [p for p in policies if p.matches(name)]
                if applying and await self._policies.immutable_by(name) is None:
                    tags = await self._index.manifests.tags_by_age(name)
                    expired += [Expired(name, t.name, t.updated_at) for t in _expired(applying, tags)]
            after = names[-1]
        return expired

    async def apply(self, actor: Actor) -> list[Expired]:
        """Remove the tags the plan lists (each as a tag delete by ``actor``, audited); returns them."""
        removed = []
        for item in await self.plan(actor):
            try:
                await self._manifests.delete(actor, RepositoryName.parse(item.repository), Tag.parse(item.tag))
            except TrustyardError:
                continue  # deleted meanwhile, or made immutable: keep going
            removed.append(item)
        return removed


def _expired(policies: list[TagPolicy], tags: list[TagAge]) -> list[TagAge]:
    """``tags`` (newest first) that no policy keeps."""
    now = datetime.now(UTC)
    kept: set[str] = set()
    for policy in policies:
        if policy.keep_last is not None:
            kept.update(t.name for t in tags[: policy.keep_last])
        if policy.keep_days is not None:
            since = now - timedelta(days=policy.keep_days)
            kept.update(t.name for t in tags if _aware(t.updated_at) >= since)
        kept.update(t.name for t in tags if policy.keeps_by_name(t.name))
    return [t for t in tags if t.name not in kept]


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)

"""Tag policies per repository pattern (``team/app``, ``team/*``, ``team/**``, ``**``): immutable tags, and
the retention rules ``services/retention.py`` applies. Every policy whose pattern matches a repository
applies to it; a tag is immutable when any of them says so.

Immutable means: once a tag names a manifest, pushing another manifest to it, deleting it, deleting the
manifest it names, or deleting the repository is refused with DENIED and a message saying which policy.
Pushing the same manifest again is allowed (clients retry pushes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase

from trustyard.db.index import Index
from trustyard.db.policies import PolicyRow
from trustyard.errors import Denied, InvalidRequest, NotFound
from trustyard.services.actor import Actor
from trustyard.services.audit import Audit

_PATTERN = re.compile(r"^(\*\*|[a-z0-9*]+(?:[._-][a-z0-9*]+)*)(/(\*\*|[a-z0-9*]+(?:[._-][a-z0-9*]+)*))*$")
_TAG_GLOB = re.compile(r"^[\w.*?\[\]!-]{1,128}$")


@dataclass(frozen=True, slots=True)
class TagPolicy:
    pattern: str
    immutable: bool = False
    keep_last: int | None = None  # retention: keep the newest N tags,
    keep_days: int | None = None  # and those pushed within D days,
    keep_tags: str | None = None  # and those matching this glob (v*, release-*); remove the rest
    updated_at: datetime | None = None
    updated_by: str | None = None

    @classmethod
    def parse(
        cls,
        pattern: str,
        immutable: bool = False,
        keep_last: int | None = None,
        keep_days: int | None = None,
        keep_tags: str | None = None,
    ) -> TagPolicy:
        if not _PATTERN.match(pattern) or len(pattern) > 255:
            raise InvalidRequest(
                f"{pattern!r} is not a repository pattern: write a name (team/app), team/* (one level), "
                "team/** (any depth) or ** (every repository)"
            )
        for name, value in (("keep_last", keep_last), ("keep_days", keep_days)):
            if value is not None and value < 0:
                raise InvalidRequest(f"{name} must be 0 or more")
        if keep_tags is not None and not _TAG_GLOB.match(keep_tags):
            raise InvalidRequest(f"{keep_tags!r} is not a tag pattern: write a glob like v* or release-*")
        return cls(pattern, immutable, keep_last, keep_days, keep_tags or None)

    def matches(self, repository: str) -> bool:
        return _compiled(self.pattern).match(repository) is not None

    @property
    def retains(self) -> bool:
        """Whether this policy has retention rules (a policy with none removes nothing)."""
        return self.keep_last is not None or self.keep_days is not None or self.keep_tags is not None

    def keeps_by_name(self, tag: str) -> bool:
        return self.keep_tags is not None and fnmatchcase(tag, self.keep_tags)


def _compiled(pattern: str) -> re.Pattern[str]:
    parts = []
    for segment in pattern.split("/"):
        parts.append(".+" if segment == "**" else re.escape(segment).replace(r"\*", "[^/]*"))
    return re.compile("^" + "/".join(parts) + "$")


class TagPolicies:
    def __init__(self, index: Index, audit: Audit) -> None:
        self._index = index
        self._audit = audit

    async def policies(self, actor: Actor) -> list[TagPolicy]:
        actor.require_admin()
        return await self.all()

    async def all(self) -> list[TagPolicy]:
        return [_policy(row) for row in await self._index.policies.policies()]

    async def put(self, actor: Actor, policy: TagPolicy) -> TagPolicy:
        actor.require_admin()
        row = PolicyRow(policy.pattern, policy.immutable, policy.keep_last, policy.keep_days, policy.keep_tags)
        await self._index.policies.put_policy(row, actor.name)
        await self._audit.record(
            actor,
            "policy.put",
            policy.pattern,
            immutable=policy.immutable,
            keep_last=policy.keep_last,
            keep_days=policy.keep_days,
            keep_tags=policy.keep_tags,
        )
        return next(p for p in await self.all() if p.pattern == policy.pattern)

    async def delete(self, actor: Actor, pattern: str) -> None:
        actor.require_admin()
        if not await self._index.policies.delete_policy(pattern):
            raise NotFound(f"there is no tag policy for {pattern!r}")
        await self._audit.record(actor, "policy.delete", pattern)

    async def immutable_by(self, repository: str) -> str | None:
        """The pattern of a policy making ``repository``'s tags immutable, if any."""
        for policy in await self.all():
            if policy.immutable and policy.matches(repository):
                return policy.pattern
        return None

    async def check_push(self, repository: str, tags: list[str], digest: str) -> None:
        """Refuse moving an immutable tag to another manifest."""
        if not tags or (pattern := await self.immutable_by(repository)) is None:
            return
        for tag in tags:
            current = await self._index.manifests.manifest_by_tag(repository, tag)
            if current is not None and current.digest != digest:
                raise Denied(
                    f"tag {tag} in {repository} is immutable (tag policy {pattern}): it names {current.digest}; "
                    "push under a new tag",
                    detail={"tag": tag, "policy": pattern},
                )

    async def check_repository_delete(self, repository: str) -> None:
        """Refuse deleting a whole repository (alone, or with its user or organization) while a policy makes
        its tags immutable and it holds one."""
        tags = await self._index.manifests.list_tags(repository, 1, None)
        await self.check_delete(repository, tags or [])

    async def check_delete(self, repository: str, tags: list[str]) -> None:
        """Refuse deleting immutable tags (or the manifest they name)."""
        if not tags or (pattern := await self.immutable_by(repository)) is None:
            return
        existing = [tag for tag in tags if await self._index.manifests.manifest_by_tag(repository, tag) is not None]
        if not existing:
            return  # nothing immutable to delete: the caller reports the unknown tag
        raise Denied(
            f"tag {existing[0]} in {repository} is immutable (tag policy {pattern}) and cannot be deleted",
            detail={"tag": existing[0], "policy": pattern},
        )


def _policy(row: PolicyRow) -> TagPolicy:
    return TagPolicy(
        row.pattern, row.immutable, row.keep_last, row.keep_days, row.keep_tags, row.updated_at, row.updated_by
    )

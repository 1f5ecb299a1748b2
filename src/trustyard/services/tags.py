"""Tags of a repository, listed in lexical order with ``n``/``last`` pagination, and with what each points to
(digest, size, platforms, when and by whom it was pushed) for the web UI."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime

from trustyard.db.index import Index
from trustyard.errors import NameUnknown, TrustyardError
from trustyard.oci.manifest import Manifest, parse_manifest
from trustyard.oci.names import RepositoryName
from trustyard.services.actor import Action, Actor


@dataclass(frozen=True, slots=True)
class TagDetail:
    name: str
    digest: str
    media_type: str
    index: bool  # an image index (multi-platform): ``platforms`` lists its children's platforms
    size: int | None  # the manifest, its config and layers (of every child for an index); None if unknown
    platforms: tuple[str, ...]
    pushed_at: datetime
    pushed_by: str | None  # None when not recorded (the tag was indexed from storage)


class Tags:
    def __init__(self, index: Index) -> None:
        self._index = index

    async def list(self, actor: Actor, repository: RepositoryName, limit: int | None, last: str | None) -> list[str]:
        actor.require(repository, Action.PULL)
        tags = await self._index.manifests.list_tags(repository.value, limit, last)
        if tags is None:
            raise NameUnknown(f"repository {repository} is not known to this registry")
        return tags

    async def details(
        self, actor: Actor, repository: RepositoryName, limit: int, last: str | None
    ) -> builtins.list[TagDetail]:
        """Up to ``limit`` tags after ``last`` with what they point to."""
        actor.require(repository, Action.PULL)
        rows = await self._index.manifests.tag_rows(repository.value, limit, last)
        if rows is None:
            raise NameUnknown(f"repository {repository} is not known to this registry")
        parsed = {row.digest: _parse(row.payload, row.media_type) for row in rows}
        children = [str(d.digest) for m in parsed.values() if m is not None and m.is_index for d in m.manifests]
        payloads = await self._index.manifests.manifest_payloads(repository.value, sorted(set(children)))
        details = []
        for row in rows:
            manifest = parsed[row.digest]
            size = platforms = None
            if manifest is not None and manifest.is_index:
                sizes = [_child_size(payloads.get(str(d.digest)), d.media_type) for d in manifest.manifests]
                size = None if None in sizes else len(row.payload) + sum(s or 0 for s in sizes)
                platforms = tuple(p for p in (_platform(d.platform) for d in manifest.manifests) if p)
            elif manifest is not None:
                size = len(row.payload) + sum(d.size for d in manifest.blobs)
            index = manifest is not None and manifest.is_index
            details.append(
                TagDetail(
                    row.name, row.digest, row.media_type, index, size, platforms or (), row.updated_at, row.pushed_by
                )
            )
        return details


def _parse(payload: bytes, media_type: str) -> Manifest | None:
    try:
        return parse_manifest(payload, media_type)
    except TrustyardError:
        return None


def _child_size(payload: bytes | None, media_type: str) -> int | None:
    manifest = _parse(payload, media_type) if payload is not None else None
    if manifest is None or manifest.is_index or payload is None:
        return None
    return len(payload) + sum(d.size for d in manifest.blobs)


def _platform(platform: dict[str, object] | None) -> str | None:
    """``os/architecture[/variant]``; None for attestation manifests (``unknown/unknown``) and missing ones."""
    if not platform or platform.get("os") in (None, "unknown"):
        return None
    parts = [platform.get("os"), platform.get("architecture"), platform.get("variant")]
    return "/".join(str(p) for p in parts if p)

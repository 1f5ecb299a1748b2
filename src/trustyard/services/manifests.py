"""Manifests in a repository: fetch by tag or digest, push (checked against what the repository holds), delete.

A push writes storage first (manifest bytes as a blob, the revision link, tag links: Distribution's layout)
and then the index in one transaction, so the index never names bytes that are not stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from trustyard.db.index import Index
from trustyard.db.manifests import ManifestRow, NewManifest
from trustyard.errors import DigestInvalid, ManifestBlobUnknown, ManifestUnknown, TooLarge
from trustyard.oci import mediatypes as mt
from trustyard.oci.digest import Digest
from trustyard.oci.manifest import Descriptor, Manifest, parse_manifest
from trustyard.oci.names import Reference, RepositoryName, Tag
from trustyard.services.actor import Action, Actor
from trustyard.services.audit import Audit
from trustyard.services.policies import TagPolicies
from trustyard.services.reservations import reserve
from trustyard.services.webhooks import Target, Webhooks
from trustyard.storage import layout
from trustyard.storage.driver import StorageDriver

# Layers clients are not expected to push (Windows foreign layers, OCI non-distributable): not checked.
_FOREIGN_LAYERS = frozenset(
    {
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)


@dataclass(frozen=True, slots=True)
class PushedManifest:
    digest: Digest
    subject: Digest | None
    tags: tuple[str, ...]


class Manifests:
    def __init__(
        self, index: Index, storage: StorageDriver, policies: TagPolicies, audit: Audit, events: Webhooks
    ) -> None:
        self._index = index
        self._storage = storage
        self._policies = policies
        self._audit = audit
        self._events = events

    async def get(self, actor: Actor, repository: RepositoryName, reference: Reference) -> ManifestRow:
        actor.require(repository, Action.PULL)
        if isinstance(reference, Tag):
            row = await self._index.manifests.manifest_by_tag(repository.value, reference.value)
        else:
            row = await self._index.manifests.manifest_by_digest(repository.value, str(reference))
        if row is None:
            raise ManifestUnknown(f"manifest {reference} is not in repository {repository}")
        tag = reference.value if isinstance(reference, Tag) else None
        target = Target("manifests", repository.value, row.digest, row.media_type, row.size, tag)
        await self._events.emit(actor, "pull", target)
        return row

    async def put(
        self,
        actor: Actor,
        repository: RepositoryName,
        reference: Reference,
        content_type: str | None,
        payload: bytes,
        extra_tags: Sequence[Tag] = (),
    ) -> PushedManifest:
        actor.require(repository, Action.PUSH)
        if len(payload) > mt.MAX_MANIFEST_BYTES:
            raise TooLarge(f"manifest is {len(payload)} bytes; the limit is {mt.MAX_MANIFEST_BYTES}")
        manifest = parse_manifest(payload, content_type)
        digest = _digest_of(payload, reference)
        await self._check_references(repository, manifest)
        named = [reference] if isinstance(reference, Tag) else []
        tags = tuple(dict.fromkeys(t.value for t in [*named, *extra_tags]))
        await self._policies.check_push(repository.value, list(tags), str(digest))
        await self._store(repository, digest, payload, tags)
        record = manifest_record(digest, payload, manifest, [d.digest for d in _checked_blobs(manifest)])
        await self._index.manifests.put_manifest(
            repository.value,
            record,
            tags,
            pushed_by=None if actor.is_anonymous else actor.name,
            audit=self._audit.entry(actor, "manifest.push", repository.value, digest=str(digest), tags=list(tags)),
        )
        for tag in tags or (None,):  # Distribution sends one push event per tag
            target = Target("manifests", repository.value, str(digest), record.media_type, len(payload), tag)
            await self._events.emit(actor, "push", target)
        return PushedManifest(digest, manifest.subject.digest if manifest.subject else None, tags)

    async def delete(self, actor: Actor, repository: RepositoryName, reference: Reference) -> None:
        actor.require(repository, Action.DELETE)
        await self._delete(repository, reference)
        await self._audit.record(actor, "manifest.delete", repository.value, reference=str(reference))
        if isinstance(reference, Tag):
            target = Target("manifests", repository.value, None, tag=reference.value)
        else:
            target = Target("manifests", repository.value, str(reference))
        await self._events.emit(actor, "delete", target)

    async def _delete(self, repository: RepositoryName, reference: Reference) -> None:
        if isinstance(reference, Tag):
            await self._policies.check_delete(repository.value, [reference.value])
            if await self._index.manifests.delete_tag(repository.value, reference.value) is None:
                raise ManifestUnknown(f"tag {reference} is not in repository {repository}")
            await self._storage.delete_prefix(layout.tag_dir(repository, reference))
            return
        await self._policies.check_delete(
            repository.value, await self._index.manifests.tags_of(repository.value, str(reference))
        )
        try:
            removed_tags = await self._index.manifests.delete_manifest(repository.value, str(reference))
        except LookupError:
            raise ManifestUnknown(f"manifest {reference} is not in repository {repository}") from None
        await self._storage.delete(layout.revision_link(repository, reference))
        for tag in removed_tags:
            await self._storage.delete_prefix(layout.tag_dir(repository, Tag(tag)))

    async def _check_references(self, repository: RepositoryName, manifest: Manifest) -> None:
        missing = await self._index.blobs.missing_blobs(
            repository.value, [str(d.digest) for d in _checked_blobs(manifest)]
        )
        if missing:
            raise ManifestBlobUnknown(
                f"manifest references blob {missing[0]} which is not in repository {repository}; push it first",
                detail={"digest": missing[0]},
            )
        children = await self._index.manifests.missing_manifests(
            repository.value, [str(d.digest) for d in manifest.manifests]
        )
        if children:
            raise ManifestBlobUnknown(
                f"index references manifest {children[0]} which is not in repository {repository}; push it first",
                detail={"digest": children[0]},
            )

    async def _store(self, repository: RepositoryName, digest: Digest, payload: bytes, tags: Sequence[str]) -> None:
        # Reserve first: garbage collection then leaves these bytes and links alone for the grace window.
        await reserve(self._index, self._storage, digest, len(payload))
        blob_key = layout.blob_data(digest)
        existing = await self._storage.stat(blob_key)
        if existing is None or existing.size != len(payload):
            await self._storage.put(blob_key, payload)
        await self._storage.put(layout.revision_link(repository, digest), layout.link_body(digest))
        for name in tags:
            tag = Tag(name)
            await self._storage.put(layout.tag_index_link(repository, tag, digest), layout.link_body(digest))
            await self._storage.put(layout.tag_current_link(repository, tag), layout.link_body(digest))


def manifest_record(digest: Digest, payload: bytes, manifest: Manifest, blobs: Sequence[Digest]) -> NewManifest:
    """What the index records of a parsed manifest; ``blobs`` are the blob references it must hold."""
    return NewManifest(
        digest=str(digest),
        media_type=manifest.media_type,
        payload=payload,
        artifact_type=manifest.effective_artifact_type,
        subject_digest=str(manifest.subject.digest) if manifest.subject else None,
        annotations=manifest.annotations,
        blob_digests=[str(blob) for blob in blobs],
        child_digests=[str(child.digest) for child in manifest.manifests],
    )


def _checked_blobs(manifest: Manifest) -> list[Descriptor]:
    return [d for d in manifest.blobs if d.media_type not in _FOREIGN_LAYERS]


def _digest_of(payload: bytes, reference: Reference) -> Digest:
    if isinstance(reference, Digest):
        actual = Digest.of(payload, reference.algorithm)
        if actual != reference:
            raise DigestInvalid(
                f"the manifest body has digest {actual}, not {reference} as the URL says",
                detail={"expected": str(reference), "actual": str(actual)},
            )
        return actual
    return Digest.of(payload)

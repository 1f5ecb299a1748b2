"""The referrers API: manifests in a repository whose ``subject`` is a given digest, as an OCI image index."""

from __future__ import annotations

import json
from dataclasses import dataclass

from trustyard.db.index import Index
from trustyard.oci import mediatypes as mt
from trustyard.oci.digest import Digest
from trustyard.oci.names import RepositoryName
from trustyard.services.actor import Action, Actor


@dataclass(frozen=True, slots=True)
class ReferrerIndex:
    payload: bytes
    filtered: bool


class Referrers:
    def __init__(self, index: Index) -> None:
        self._index = index

    async def list(
        self, actor: Actor, repository: RepositoryName, subject: Digest, artifact_type: str | None
    ) -> ReferrerIndex:
        actor.require(repository, Action.PULL)
        rows = await self._index.manifests.referrers(repository.value, str(subject), artifact_type)
        descriptors = []
        for row in rows:
            descriptor: dict[str, object] = {
                "mediaType": row.media_type,
                "digest": row.digest,
                "size": row.size,
            }
            if row.artifact_type:
                descriptor["artifactType"] = row.artifact_type
            if row.annotations:
                descriptor["annotations"] = row.annotations
            descriptors.append(descriptor)
        document = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": descriptors}
        return ReferrerIndex(json.dumps(document, separators=(",", ":")).encode(), bool(artifact_type))

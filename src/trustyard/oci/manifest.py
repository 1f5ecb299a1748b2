"""Manifest parsing: bytes and a declared media type in, a ``Manifest`` value out (or ManifestInvalid).

Parsing checks structure only: schema version, media type agreement, descriptor shapes. Whether the
referenced blobs and child manifests exist is the manifests service's business.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trustyard.errors import DigestInvalid, ManifestInvalid
from trustyard.oci import jsontext
from trustyard.oci import mediatypes as mt
from trustyard.oci.digest import Digest


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None
    platform: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest), "size": self.size}
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = self.annotations
        if self.platform:
            out["platform"] = self.platform
        return out


@dataclass(frozen=True, slots=True)
class Manifest:
    media_type: str
    config: Descriptor | None
    layers: tuple[Descriptor, ...]
    manifests: tuple[Descriptor, ...]
    subject: Descriptor | None
    artifact_type: str | None
    annotations: dict[str, str] | None = field(default=None)

    @property
    def is_index(self) -> bool:
        return self.media_type in mt.INDEXES

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        """Blobs this manifest needs in its repository: config then layers."""
        return ((self.config,) if self.config else ()) + self.layers

    @property
    def effective_artifact_type(self) -> str | None:
        """What the referrers API reports: artifactType, else the config's media type (image manifests)."""
        if self.artifact_type:
            return self.artifact_type
        if self.config is not None and not self.is_index:
            return self.config.media_type
        return None


def parse_manifest(payload: bytes, content_type: str | None) -> Manifest:
    declared = mt.base(content_type)
    if declared in mt.SCHEMA1 - {"application/json"}:
        raise _schema1()
    try:
        doc = jsontext.load(payload, max_bytes=mt.MAX_MANIFEST_BYTES)
    except jsontext.JsonRejected as exc:
        raise ManifestInvalid(f"manifest rejected: {exc}") from None
    if not isinstance(doc, dict):
        raise ManifestInvalid("manifest must be a JSON object")
    version = doc.get("schemaVersion")
    if version == 1 or "fsLayers" in doc:
        raise _schema1()
    if version != 2:
        raise ManifestInvalid(f"schemaVersion must be 2, not {version!r}")
    media_type = _media_type(doc, declared)
    if media_type in mt.INDEXES:
        manifests = tuple(_descriptor(d, "manifests[]") for d in _list(doc, "manifests", required=True))
        return Manifest(
            media_type=media_type,
            config=None,
            layers=(),
            manifests=manifests,
            subject=_optional_descriptor(doc, "subject"),
            artifact_type=_optional_str(doc, "artifactType"),
            annotations=_annotations(doc),
        )
    config = _descriptor(doc.get("config"), "config")
    layers = tuple(_descriptor(d, "layers[]") for d in _list(doc, "layers", required=media_type == mt.DOCKER_MANIFEST))
    if media_type == mt.OCI_MANIFEST and config.media_type == mt.OCI_EMPTY and not doc.get("artifactType"):
        # image-spec: an artifact with an empty config must say what it is.
        raise ManifestInvalid("artifactType is required when config.mediaType is application/vnd.oci.empty.v1+json")
    return Manifest(
        media_type=media_type,
        config=config,
        layers=layers,
        manifests=(),
        subject=_optional_descriptor(doc, "subject"),
        artifact_type=_optional_str(doc, "artifactType"),
        annotations=_annotations(doc),
    )


def _schema1() -> ManifestInvalid:
    return ManifestInvalid(
        "Docker schema1 manifests are not accepted: they are deprecated and unsigned by content. "
        "Push with a current client (docker 1.10+, podman, skopeo) which sends schema2 or OCI manifests."
    )


def _media_type(doc: dict[str, Any], declared: str) -> str:
    in_body = doc.get("mediaType")
    if in_body is not None and not isinstance(in_body, str):
        raise ManifestInvalid("mediaType must be a string")
    if in_body and declared and declared != "application/json" and in_body != declared:
        raise ManifestInvalid(f"Content-Type {declared!r} does not match the manifest's mediaType {in_body!r}")
    media_type = in_body or declared
    if not media_type or media_type == "application/json":
        # OCI permits omitting mediaType; infer from the shape.
        media_type = mt.OCI_INDEX if "manifests" in doc else mt.OCI_MANIFEST
    if media_type not in mt.MANIFESTS:
        raise ManifestInvalid(
            f"unsupported manifest media type {media_type!r}; accepted: {', '.join(sorted(mt.MANIFESTS))}"
        )
    return media_type


def _list(doc: dict[str, Any], key: str, *, required: bool) -> list[Any]:
    value = doc.get(key)
    if value is None:
        if required:
            raise ManifestInvalid(f"{key} is required")
        return []
    if not isinstance(value, list):
        raise ManifestInvalid(f"{key} must be a list")
    return value


def _optional_str(doc: dict[str, Any], key: str) -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise ManifestInvalid(f"{key} must be a string")
    return value or None


def _annotations(doc: dict[str, Any]) -> dict[str, str] | None:
    value = doc.get("annotations")
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ManifestInvalid("annotations must be an object of strings")
    return value


def _optional_descriptor(doc: dict[str, Any], key: str) -> Descriptor | None:
    return None if doc.get(key) is None else _descriptor(doc[key], key)


def _descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise ManifestInvalid(f"{where} must be a descriptor object")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise ManifestInvalid(f"{where}.mediaType is required")
    if not isinstance(digest, str):
        raise ManifestInvalid(f"{where}.digest is required")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestInvalid(f"{where}.size must be a non-negative integer")
    try:
        parsed = Digest.parse(digest)
    except DigestInvalid as exc:
        raise ManifestInvalid(f"{where}.digest: {exc.message}") from None
    platform = value.get("platform")
    return Descriptor(
        media_type=media_type,
        digest=parsed,
        size=size,
        artifact_type=_optional_str(value, "artifactType"),
        annotations=_annotations(value),
        platform=platform if isinstance(platform, dict) else None,
    )

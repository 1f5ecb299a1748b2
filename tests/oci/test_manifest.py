"""Manifest parsing: OCI and Docker schema2 images and indexes, artifacts, and every refusal."""

from __future__ import annotations

import json
from typing import Any

import pytest

from trustyard.errors import ManifestInvalid
from trustyard.oci import mediatypes as mt
from trustyard.oci.digest import Digest
from trustyard.oci.manifest import Descriptor, parse_manifest

CONFIG = Digest.of(b"config")
LAYER = Digest.of(b"layer")
CHILD = Digest.of(b"child")
EMPTY = Digest.of(b"{}")


def descriptor(media_type: str, digest: Digest, size: int = 10, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": str(digest), "size": size, **extra}


def oci_image(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": descriptor(mt.OCI_CONFIG, CONFIG),
        "layers": [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", LAYER, 1234)],
    }
    doc.update(changes)
    return doc


def oci_index(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_INDEX,
        "manifests": [
            descriptor(mt.OCI_MANIFEST, CHILD, 500, platform={"architecture": "amd64", "os": "linux"}),
        ],
    }
    doc.update(changes)
    return doc


def encode(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def test_oci_image() -> None:
    manifest = parse_manifest(encode(oci_image(annotations={"a": "b"})), mt.OCI_MANIFEST)
    assert manifest.media_type == mt.OCI_MANIFEST
    assert manifest.config == Descriptor(mt.OCI_CONFIG, CONFIG, 10)
    assert [layer.digest for layer in manifest.layers] == [LAYER]
    assert manifest.blobs == (manifest.config, *manifest.layers)
    assert manifest.manifests == ()
    assert not manifest.is_index
    assert manifest.subject is None
    assert manifest.annotations == {"a": "b"}
    assert manifest.effective_artifact_type == mt.OCI_CONFIG


def test_oci_image_with_charset_in_content_type() -> None:
    manifest = parse_manifest(encode(oci_image()), f"{mt.OCI_MANIFEST}; charset=utf-8")
    assert manifest.media_type == mt.OCI_MANIFEST


def test_oci_image_without_media_type_in_body_or_header() -> None:
    doc = oci_image()
    del doc["mediaType"]
    assert parse_manifest(encode(doc), None).media_type == mt.OCI_MANIFEST
    assert parse_manifest(encode(doc), "application/json").media_type == mt.OCI_MANIFEST
    assert parse_manifest(encode(doc), mt.OCI_MANIFEST).media_type == mt.OCI_MANIFEST


def test_oci_index() -> None:
    manifest = parse_manifest(encode(oci_index()), mt.OCI_INDEX)
    assert manifest.is_index
    assert manifest.config is None
    assert manifest.blobs == ()
    assert [child.digest for child in manifest.manifests] == [CHILD]
    assert manifest.manifests[0].platform == {"architecture": "amd64", "os": "linux"}
    assert manifest.effective_artifact_type is None


def test_oci_index_inferred_without_media_type() -> None:
    doc = oci_index()
    del doc["mediaType"]
    assert parse_manifest(encode(doc), None).media_type == mt.OCI_INDEX


def test_docker_schema2_image() -> None:
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST,
        "config": descriptor(mt.DOCKER_CONFIG, CONFIG),
        "layers": [descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", LAYER)],
    }
    manifest = parse_manifest(encode(doc), mt.DOCKER_MANIFEST)
    assert manifest.media_type == mt.DOCKER_MANIFEST
    assert manifest.effective_artifact_type == mt.DOCKER_CONFIG


def test_docker_schema2_requires_layers() -> None:
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST,
        "config": descriptor(mt.DOCKER_CONFIG, CONFIG),
    }
    with pytest.raises(ManifestInvalid, match="layers is required"):
        parse_manifest(encode(doc), mt.DOCKER_MANIFEST)


def test_docker_manifest_list() -> None:
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST_LIST,
        "manifests": [descriptor(mt.DOCKER_MANIFEST, CHILD, platform={"architecture": "arm64", "os": "linux"})],
    }
    manifest = parse_manifest(encode(doc), mt.DOCKER_MANIFEST_LIST)
    assert manifest.is_index
    assert [child.digest for child in manifest.manifests] == [CHILD]


def test_artifact_with_artifact_type_and_empty_config() -> None:
    doc = oci_image(
        artifactType="application/vnd.example.sbom+json",
        config=descriptor(mt.OCI_EMPTY, EMPTY, 2, data="e30="),
        layers=[descriptor("application/spdx+json", LAYER)],
        subject=descriptor(mt.OCI_MANIFEST, CHILD),
    )
    manifest = parse_manifest(encode(doc), mt.OCI_MANIFEST)
    assert manifest.artifact_type == "application/vnd.example.sbom+json"
    assert manifest.effective_artifact_type == "application/vnd.example.sbom+json"
    assert manifest.subject == Descriptor(mt.OCI_MANIFEST, CHILD, 10)


def test_artifact_with_empty_config_and_no_layers() -> None:
    doc = oci_image(artifactType="application/vnd.example+type", config=descriptor(mt.OCI_EMPTY, EMPTY, 2))
    del doc["layers"]
    assert parse_manifest(encode(doc), mt.OCI_MANIFEST).layers == ()


def test_empty_config_without_artifact_type_is_refused() -> None:
    with pytest.raises(ManifestInvalid, match="artifactType is required"):
        parse_manifest(encode(oci_image(config=descriptor(mt.OCI_EMPTY, EMPTY, 2))), mt.OCI_MANIFEST)


def test_index_with_artifact_type_and_subject() -> None:
    doc = oci_index(artifactType="application/vnd.example", subject=descriptor(mt.OCI_MANIFEST, CONFIG))
    manifest = parse_manifest(encode(doc), mt.OCI_INDEX)
    assert manifest.effective_artifact_type == "application/vnd.example"
    assert manifest.subject is not None


@pytest.mark.parametrize("content_type", [mt.DOCKER_SCHEMA1, mt.DOCKER_SCHEMA1_SIGNED])
def test_schema1_content_type_is_refused(content_type: str) -> None:
    with pytest.raises(ManifestInvalid, match="schema1"):
        parse_manifest(b"{}", content_type)


@pytest.mark.parametrize(
    "doc",
    [
        {"schemaVersion": 1, "name": "a", "tag": "b", "fsLayers": [], "history": []},
        {"schemaVersion": 2, "fsLayers": []},
    ],
)
def test_schema1_body_is_refused(doc: dict[str, Any]) -> None:
    with pytest.raises(ManifestInvalid, match="schema1"):
        parse_manifest(encode(doc), "application/json")


@pytest.mark.parametrize("payload", [b"", b"{", b"not json", b"\xff\xfe", b'{"schemaVersion": 2,}'])
def test_bad_json(payload: bytes) -> None:
    with pytest.raises(ManifestInvalid, match="not valid JSON"):
        parse_manifest(payload, mt.OCI_MANIFEST)


@pytest.mark.parametrize("payload", [b"[]", b'"manifest"', b"2", b"null"])
def test_json_that_is_not_an_object(payload: bytes) -> None:
    with pytest.raises(ManifestInvalid, match="JSON object"):
        parse_manifest(payload, mt.OCI_MANIFEST)


@pytest.mark.parametrize("version", [None, 3, "2", 0])
def test_wrong_schema_version(version: Any) -> None:
    doc = oci_image(schemaVersion=version)
    if version is None:
        del doc["schemaVersion"]
    with pytest.raises(ManifestInvalid, match="schemaVersion must be 2"):
        parse_manifest(encode(doc), mt.OCI_MANIFEST)


def test_content_type_and_media_type_mismatch() -> None:
    with pytest.raises(ManifestInvalid, match="does not match"):
        parse_manifest(encode(oci_image()), mt.DOCKER_MANIFEST)
    with pytest.raises(ManifestInvalid, match="does not match"):
        parse_manifest(encode(oci_index()), mt.OCI_MANIFEST)


def test_unsupported_media_type() -> None:
    with pytest.raises(ManifestInvalid, match="unsupported manifest media type"):
        parse_manifest(encode(oci_image(mediaType="application/vnd.example+json")), None)
    with pytest.raises(ManifestInvalid, match="mediaType must be a string"):
        parse_manifest(encode(oci_image(mediaType=5)), None)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (None, "config must be a descriptor object"),
        ("sha256:abc", "config must be a descriptor object"),
        ({"digest": str(CONFIG), "size": 1}, r"config.mediaType is required"),
        ({"mediaType": mt.OCI_CONFIG, "size": 1}, r"config.digest is required"),
        ({"mediaType": mt.OCI_CONFIG, "digest": "sha256:abc", "size": 1}, r"config.digest: invalid sha256"),
        ({"mediaType": mt.OCI_CONFIG, "digest": "md5:" + "0" * 32, "size": 1}, "config.digest: unsupported"),
        ({"mediaType": mt.OCI_CONFIG, "digest": str(CONFIG).upper(), "size": 1}, "config.digest"),
        ({"mediaType": mt.OCI_CONFIG, "digest": str(CONFIG), "size": -1}, "size must be a non-negative"),
        ({"mediaType": mt.OCI_CONFIG, "digest": str(CONFIG), "size": "1"}, "size must be a non-negative"),
        ({"mediaType": mt.OCI_CONFIG, "digest": str(CONFIG), "size": True}, "size must be a non-negative"),
        ({"mediaType": mt.OCI_CONFIG, "digest": str(CONFIG), "size": 1.5}, "size must be a non-negative"),
    ],
)
def test_bad_config_descriptor(config: Any, message: str) -> None:
    with pytest.raises(ManifestInvalid, match=message):
        parse_manifest(encode(oci_image(config=config)), mt.OCI_MANIFEST)


def test_bad_layer_and_child_descriptors() -> None:
    bad = descriptor(mt.OCI_MANIFEST, CHILD) | {"digest": "sha256:" + "Z" * 64}
    with pytest.raises(ManifestInvalid, match=r"layers\[\]\.digest"):
        parse_manifest(encode(oci_image(layers=[bad])), mt.OCI_MANIFEST)
    with pytest.raises(ManifestInvalid, match=r"manifests\[\]\.digest"):
        parse_manifest(encode(oci_index(manifests=[bad])), mt.OCI_INDEX)
    with pytest.raises(ManifestInvalid, match="layers must be a list"):
        parse_manifest(encode(oci_image(layers={"a": 1})), mt.OCI_MANIFEST)
    with pytest.raises(ManifestInvalid, match="manifests is required"):
        parse_manifest(encode({"schemaVersion": 2, "mediaType": mt.OCI_INDEX}), mt.OCI_INDEX)
    with pytest.raises(ManifestInvalid, match=r"subject\.digest"):
        parse_manifest(encode(oci_image(subject=bad)), mt.OCI_MANIFEST)


def test_bad_annotations_and_artifact_type() -> None:
    with pytest.raises(ManifestInvalid, match="annotations"):
        parse_manifest(encode(oci_image(annotations={"a": 1})), mt.OCI_MANIFEST)
    with pytest.raises(ManifestInvalid, match="artifactType must be a string"):
        parse_manifest(encode(oci_image(artifactType=["x"])), mt.OCI_MANIFEST)


def test_descriptor_to_json_round_trips() -> None:
    raw = descriptor(mt.OCI_MANIFEST, CHILD, 7, artifactType="x/y", annotations={"k": "v"}, platform={"os": "linux"})
    manifest = parse_manifest(encode(oci_index(manifests=[raw])), mt.OCI_INDEX)
    assert manifest.manifests[0].to_json() == raw

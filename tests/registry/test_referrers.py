"""``/v2/<name>/referrers/<digest>``: the manifests whose subject is a digest, as an OCI image index."""

from __future__ import annotations

from typing import Any

import httpx

from trustyard.oci import mediatypes as mt

from .conftest import EMPTY_CONFIG, Image, digest_of, error_code, image_manifest, push_blob, push_image, put_manifest

SBOM = "application/vnd.example.sbom"
SIGNATURE = "application/vnd.example.signature"


async def push_referrer(
    client: httpx.AsyncClient, subject: Image, artifact_type: str, content: bytes
) -> dict[str, Any]:
    for blob in (EMPTY_CONFIG, content):
        await push_blob(client, "app", blob)
    annotations = {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}
    manifest = image_manifest(
        EMPTY_CONFIG,
        [content],
        config_type=mt.OCI_EMPTY,
        artifact_type=artifact_type,
        subject={"mediaType": subject.media_type, "digest": subject.digest, "size": len(subject.manifest)},
        annotations=annotations,
    )
    response = await put_manifest(client, "app", digest_of(manifest), manifest)
    assert response.status_code == 201, response.text
    assert response.headers["oci-subject"] == subject.digest
    return {
        "mediaType": mt.OCI_MANIFEST,
        "digest": digest_of(manifest),
        "size": len(manifest),
        "artifactType": artifact_type,
        "annotations": annotations,
    }


async def test_referrers(client: httpx.AsyncClient) -> None:
    image = await push_image(client, "app", "v1")
    sbom = await push_referrer(client, image, SBOM, b"sbom")
    signature = await push_referrer(client, image, SIGNATURE, b"signature")
    response = await client.get(f"/v2/app/referrers/{image.digest}")
    assert response.status_code == 200
    assert response.headers["content-type"] == mt.OCI_INDEX
    assert "oci-filters-applied" not in response.headers
    body = response.json()
    assert body["schemaVersion"] == 2
    assert body["mediaType"] == mt.OCI_INDEX
    assert sorted(body["manifests"], key=lambda d: d["digest"]) == sorted([sbom, signature], key=lambda d: d["digest"])


async def test_artifact_type_filter(client: httpx.AsyncClient) -> None:
    image = await push_image(client, "app", "v1")
    sbom = await push_referrer(client, image, SBOM, b"sbom")
    await push_referrer(client, image, SIGNATURE, b"signature")
    response = await client.get(f"/v2/app/referrers/{image.digest}", params={"artifactType": SBOM})
    assert response.status_code == 200
    assert response.headers["oci-filters-applied"] == "artifactType"
    assert response.json()["manifests"] == [sbom]
    none = await client.get(f"/v2/app/referrers/{image.digest}", params={"artifactType": "application/x.none"})
    assert none.headers["oci-filters-applied"] == "artifactType"
    assert none.json()["manifests"] == []


async def test_image_referrer_reports_its_config_media_type(client: httpx.AsyncClient) -> None:
    image = await push_image(client, "app", "v1")
    subject = {"mediaType": mt.OCI_MANIFEST, "digest": image.digest, "size": len(image.manifest)}
    referrer = await push_image(client, "app", "@", seed="ref", subject=subject)
    response = await client.get(f"/v2/app/referrers/{image.digest}")
    [found] = response.json()["manifests"]
    assert found["digest"] == referrer.digest
    assert found["artifactType"] == mt.OCI_CONFIG


async def test_referrer_pushed_before_its_subject(client: httpx.AsyncClient) -> None:
    future = {"mediaType": mt.OCI_MANIFEST, "digest": digest_of(b"later"), "size": 5}
    await push_blob(client, "app", EMPTY_CONFIG)
    manifest = image_manifest(
        EMPTY_CONFIG, [EMPTY_CONFIG], config_type=mt.OCI_EMPTY, artifact_type=SBOM, subject=future
    )
    assert (await put_manifest(client, "app", digest_of(manifest), manifest)).status_code == 201
    response = await client.get(f"/v2/app/referrers/{future['digest']}")
    assert [d["digest"] for d in response.json()["manifests"]] == [digest_of(manifest)]


async def test_deleted_referrer_is_not_listed(client: httpx.AsyncClient) -> None:
    image = await push_image(client, "app", "v1")
    sbom = await push_referrer(client, image, SBOM, b"sbom")
    assert (await client.delete(f"/v2/app/manifests/{sbom['digest']}")).status_code == 202
    response = await client.get(f"/v2/app/referrers/{image.digest}")
    assert response.json()["manifests"] == []


async def test_unknown_subject_is_an_empty_index(client: httpx.AsyncClient) -> None:
    for repository in ("app", "never-pushed"):
        response = await client.get(f"/v2/{repository}/referrers/{digest_of(b'unknown')}")
        assert response.status_code == 200
        assert response.headers["content-type"] == mt.OCI_INDEX
        assert response.json() == {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}


async def test_referrers_of_a_bad_digest(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2/app/referrers/sha256:nope")
    assert response.status_code == 400
    assert error_code(response) == "DIGEST_INVALID"

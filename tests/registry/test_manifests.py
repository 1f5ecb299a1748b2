"""``/v2/<name>/manifests/<reference>``: every manifest kind pushed and pulled, every refusal storing nothing."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from trustyard.oci import mediatypes as mt

from .conftest import (
    EMPTY_CONFIG,
    descriptor,
    digest_of,
    error_code,
    error_message,
    image_manifest,
    index_manifest,
    push_blob,
    push_image,
    put_manifest,
    to_bytes,
)


async def assert_manifest(
    client: httpx.AsyncClient, repository: str, reference: str, payload: bytes, media_type: str
) -> None:
    digest = digest_of(payload)
    for method in ("GET", "HEAD"):
        response = await client.request(method, f"/v2/{repository}/manifests/{reference}")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == media_type
        assert response.headers["docker-content-digest"] == digest
        assert response.headers["content-length"] == str(len(payload))
        assert response.content == (payload if method == "GET" else b"")


async def assert_no_manifest(client: httpx.AsyncClient, repository: str, reference: str) -> None:
    response = await client.get(f"/v2/{repository}/manifests/{reference}")
    assert response.status_code == 404
    assert error_code(response) == "MANIFEST_UNKNOWN"


async def tags(client: httpx.AsyncClient, repository: str) -> list[str] | None:
    response = await client.get(f"/v2/{repository}/tags/list")
    if response.status_code == 404:
        return None
    found: list[str] = response.json()["tags"]
    return found


@pytest.mark.parametrize("media_type", [mt.OCI_MANIFEST, mt.DOCKER_MANIFEST])
async def test_image_manifest_by_tag_and_digest(client: httpx.AsyncClient, media_type: str) -> None:
    image = await push_image(client, "app", "v1", media_type=media_type)
    await assert_manifest(client, "app", "v1", image.manifest, media_type)
    await assert_manifest(client, "app", image.digest, image.manifest, media_type)


async def test_put_response_headers(client: httpx.AsyncClient) -> None:
    config, layer = b'{"os":"linux"}', b"layer"
    for blob in (config, layer):
        await push_blob(client, "app", blob)
    manifest = image_manifest(config, [layer])
    response = await put_manifest(client, "app", "v1", manifest)
    assert response.status_code == 201
    digest = digest_of(manifest)
    assert response.headers["location"] == f"/v2/app/manifests/{digest}"
    assert response.headers["docker-content-digest"] == digest
    assert "oci-subject" not in response.headers


async def test_put_by_digest(client: httpx.AsyncClient) -> None:
    image = await push_image(client, "app", "@")
    await assert_manifest(client, "app", image.digest, image.manifest, mt.OCI_MANIFEST)
    assert await tags(client, "app") == []


async def test_put_by_sha512_digest(client: httpx.AsyncClient) -> None:
    config, layer = b"{}", b"layer"
    for blob in (config, layer):
        await push_blob(client, "app", blob)
    manifest = image_manifest(config, [layer])
    digest = digest_of(manifest, "sha512")
    response = await put_manifest(client, "app", digest, manifest)
    assert response.status_code == 201
    assert response.headers["docker-content-digest"] == digest
    got = await client.get(f"/v2/app/manifests/{digest}")
    assert got.status_code == 200
    assert got.content == manifest
    assert got.headers["docker-content-digest"] == digest


async def test_put_by_sha512_digest_with_tags(client: httpx.AsyncClient) -> None:
    config, layer = b"{}", b"layer"
    for blob in (config, layer):
        await push_blob(client, "app", blob)
    manifest = image_manifest(config, [layer])
    digest = digest_of(manifest, "sha512")
    response = await put_manifest(client, "app", digest, manifest, tag=["a", "b"])
    assert response.status_code == 201, response.text
    assert response.headers.get_list("oci-tag") == ["a", "b"]
    assert response.headers["docker-content-digest"] == digest
    assert await tags(client, "app") == ["a", "b"]
    for tag in ("a", "b"):
        for method in ("HEAD", "GET"):
            got = await client.request(method, f"/v2/app/manifests/{tag}")
            assert got.status_code == 200
            assert got.headers["docker-content-digest"] == digest


async def test_manifest_referencing_sha512_blobs(client: httpx.AsyncClient) -> None:
    config, layer = b'{"sha":512}', b"layer 512"
    for blob in (config, layer):
        await push_blob(client, "app", blob, "sha512")
    document = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": digest_of(config, "sha512"), "size": len(config)},
        "layers": [{"mediaType": "application/octet-stream", "digest": digest_of(layer, "sha512"), "size": 9}],
    }
    response = await put_manifest(client, "app", "v1", to_bytes(document))
    assert response.status_code == 201, response.text


async def test_multiple_tags_in_one_put(client: httpx.AsyncClient) -> None:
    image = await push_image(client, "app", "v1")
    response = await put_manifest(client, "app", image.digest, image.manifest, tag=["a", "b", "c"])
    assert response.status_code == 201
    assert response.headers.get_list("oci-tag") == ["a", "b", "c"]
    assert await tags(client, "app") == ["a", "b", "c", "v1"]
    for tag in ("a", "b", "c"):
        await assert_manifest(client, "app", tag, image.manifest, mt.OCI_MANIFEST)


async def test_tag_and_query_tags_together(client: httpx.AsyncClient) -> None:
    image = await push_image(client, "app", "v1")
    response = await put_manifest(client, "app", "v2", image.manifest, tag=["v3"])
    assert response.status_code == 201
    assert await tags(client, "app") == ["v1", "v2", "v3"]


async def test_tag_moves_to_a_new_manifest(client: httpx.AsyncClient) -> None:
    first = await push_image(client, "app", "latest", seed="1")
    second = await push_image(client, "app", "latest", seed="2")
    await assert_manifest(client, "app", "latest", second.manifest, mt.OCI_MANIFEST)
    await assert_manifest(client, "app", first.digest, first.manifest, mt.OCI_MANIFEST)


async def test_pushing_the_same_manifest_twice(client: httpx.AsyncClient) -> None:
    image = await push_image(client, "app", "v1")
    response = await put_manifest(client, "app", "v1", image.manifest)
    assert response.status_code == 201
    assert response.headers["docker-content-digest"] == image.digest


@pytest.mark.parametrize(
    ("index_type", "child_type"), [(mt.OCI_INDEX, mt.OCI_MANIFEST), (mt.DOCKER_MANIFEST_LIST, mt.DOCKER_MANIFEST)]
)
async def test_index(client: httpx.AsyncClient, index_type: str, child_type: str) -> None:
    amd = await push_image(client, "app", "@", seed="amd64", media_type=child_type)
    arm = await push_image(client, "app", "@", seed="arm64", media_type=child_type)
    index = index_manifest([(child_type, amd.manifest), (child_type, arm.manifest)], media_type=index_type)
    response = await put_manifest(client, "app", "multi", index, index_type)
    assert response.status_code == 201, response.text
    await assert_manifest(client, "app", "multi", index, index_type)
    await assert_manifest(client, "app", digest_of(index), index, index_type)


async def test_index_with_a_missing_child(client: httpx.AsyncClient) -> None:
    present = await push_image(client, "app", "@", seed="present")
    absent = image_manifest(present.config, present.layers, annotations={"never": "pushed"})
    index = index_manifest([(mt.OCI_MANIFEST, present.manifest), (mt.OCI_MANIFEST, absent)])
    response = await put_manifest(client, "app", "multi", index, mt.OCI_INDEX)
    assert response.status_code == 400
    assert error_code(response) == "MANIFEST_BLOB_UNKNOWN"
    assert digest_of(absent) in error_message(response)
    await assert_no_manifest(client, "app", "multi")
    await assert_no_manifest(client, "app", digest_of(index))


async def test_index_whose_child_is_in_another_repository(client: httpx.AsyncClient) -> None:
    child = await push_image(client, "other", "v1")
    await push_image(client, "app", "v1", seed="mine")
    index = index_manifest([(mt.OCI_MANIFEST, child.manifest)])
    response = await put_manifest(client, "app", "multi", index, mt.OCI_INDEX)
    assert response.status_code == 400
    assert error_code(response) == "MANIFEST_BLOB_UNKNOWN"


async def test_artifact_with_empty_config(client: httpx.AsyncClient) -> None:
    blob = b"an sbom"
    for data in (EMPTY_CONFIG, blob):
        await push_blob(client, "app", data)
    manifest = image_manifest(
        EMPTY_CONFIG,
        [blob],
        config_type=mt.OCI_EMPTY,
        layer_type="application/spdx+json",
        artifact_type="application/vnd.example.sbom",
    )
    response = await put_manifest(client, "app", "sbom", manifest)
    assert response.status_code == 201, response.text
    await assert_manifest(client, "app", "sbom", manifest, mt.OCI_MANIFEST)


async def test_artifact_with_empty_config_needs_an_artifact_type(client: httpx.AsyncClient) -> None:
    await push_blob(client, "app", EMPTY_CONFIG)
    manifest = image_manifest(EMPTY_CONFIG, [EMPTY_CONFIG], config_type=mt.OCI_EMPTY)
    response = await put_manifest(client, "app", "sbom", manifest)
    assert response.status_code == 400
    assert error_code(response) == "MANIFEST_INVALID"
    assert "artifactType" in error_message(response)


async def test_artifact_with_custom_config_media_type(client: httpx.AsyncClient) -> None:
    config, blob = b'{"chart":"x"}', b"chart bytes"
    for data in (config, blob):
        await push_blob(client, "app", data)
    manifest = image_manifest(
        config,
        [blob],
        config_type="application/vnd.cncf.helm.config.v1+json",
        layer_type="application/vnd.cncf.helm.chart.content.v1.tar+gzip",
    )
    response = await put_manifest(client, "app", "0.1.0", manifest)
    assert response.status_code == 201, response.text
    await assert_manifest(client, "app", "0.1.0", manifest, mt.OCI_MANIFEST)


async def test_artifact_without_layers(client: httpx.AsyncClient) -> None:
    await push_blob(client, "app", EMPTY_CONFIG)
    document = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": "application/vnd.example.signature",
        "config": descriptor(mt.OCI_EMPTY, EMPTY_CONFIG),
        "layers": [descriptor(mt.OCI_EMPTY, EMPTY_CONFIG)],
        "annotations": {"org.example": "value"},
    }
    response = await put_manifest(client, "app", "sig", to_bytes(document))
    assert response.status_code == 201, response.text


async def test_subject_that_does_not_exist_yet_is_accepted(client: httpx.AsyncClient) -> None:
    await push_blob(client, "app", EMPTY_CONFIG)
    subject = {"mediaType": mt.OCI_MANIFEST, "digest": digest_of(b"future image"), "size": 12}
    manifest = image_manifest(
        EMPTY_CONFIG, [EMPTY_CONFIG], config_type=mt.OCI_EMPTY, artifact_type="application/x.sig", subject=subject
    )
    response = await put_manifest(client, "app", digest_of(manifest), manifest)
    assert response.status_code == 201, response.text
    assert response.headers["oci-subject"] == subject["digest"]
    await assert_manifest(client, "app", digest_of(manifest), manifest, mt.OCI_MANIFEST)


# Refusals: each stores nothing.


async def assert_refused(
    client: httpx.AsyncClient,
    payload: bytes,
    media_type: str,
    status: int,
    code: str,
    reference: str = "v1",
    catalog_before: list[str] | None = None,
) -> httpx.Response:
    response = await put_manifest(client, "app", reference, payload, media_type)
    assert response.status_code == status, response.text
    assert error_code(response) == code
    await assert_no_manifest(client, "app", reference)
    await assert_no_manifest(client, "app", digest_of(payload))
    assert "v1" not in (await tags(client, "app") or [])
    if catalog_before is not None:
        assert (await client.get("/v2/_catalog")).json()["repositories"] == catalog_before
    return response


async def test_put_by_digest_with_a_mismatching_body(client: httpx.AsyncClient) -> None:
    image = await push_image(client, "app", "@")
    other = digest_of(b"some other manifest")
    response = await put_manifest(client, "app", other, image.manifest)
    assert response.status_code == 400
    assert error_code(response) == "DIGEST_INVALID"
    await assert_no_manifest(client, "app", other)


@pytest.mark.parametrize(
    "payload",
    [
        b"[" * 5000,  # json.loads recursed until RecursionError: a 500 and a traceback per request
        b'{"schemaVersion": 2, "annotations": ' + b'{"a": ' * 5000 + b'"x"' + b"}" * 5001,
        b"\xff" * 100,
    ],
)
async def test_deep_or_broken_json_is_manifest_invalid(client: httpx.AsyncClient, payload: bytes) -> None:
    response = await assert_refused(client, payload, mt.OCI_MANIFEST, 400, "MANIFEST_INVALID", catalog_before=[])
    assert "JSON" in error_message(response)


async def test_missing_blob(client: httpx.AsyncClient) -> None:
    config = b"{}"
    await push_blob(client, "app", config)
    manifest = image_manifest(config, [b"never pushed"])
    response = await assert_refused(client, manifest, mt.OCI_MANIFEST, 400, "MANIFEST_BLOB_UNKNOWN", catalog_before=[])
    assert digest_of(b"never pushed") in error_message(response)


async def test_missing_config(client: httpx.AsyncClient) -> None:
    await push_blob(client, "app", b"layer")
    manifest = image_manifest(b"never pushed", [b"layer"])
    await assert_refused(client, manifest, mt.OCI_MANIFEST, 400, "MANIFEST_BLOB_UNKNOWN", catalog_before=[])


async def test_blob_of_another_repository_is_missing(client: httpx.AsyncClient) -> None:
    image = await push_image(client, "other", "v1")
    await assert_refused(
        client, image.manifest, mt.OCI_MANIFEST, 400, "MANIFEST_BLOB_UNKNOWN", catalog_before=["other"]
    )


SCHEMA1 = to_bytes(
    {
        "schemaVersion": 1,
        "name": "app",
        "tag": "v1",
        "architecture": "amd64",
        "fsLayers": [{"blobSum": digest_of(b"x")}],
        "history": [{"v1Compatibility": "{}"}],
    }
)


@pytest.mark.parametrize("media_type", [mt.DOCKER_SCHEMA1, mt.DOCKER_SCHEMA1_SIGNED, "application/json"])
async def test_schema1_is_refused(client: httpx.AsyncClient, media_type: str) -> None:
    response = await assert_refused(client, SCHEMA1, media_type, 400, "MANIFEST_INVALID", catalog_before=[])
    assert "schema1" in error_message(response)


@pytest.mark.parametrize(
    "payload",
    [
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b'{"schemaVersion": 3}',
        b'{"mediaType": "application/vnd.oci.image.manifest.v1+json"}',
        b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": []}',
        b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",'
        b' "config": {"mediaType": "x", "digest": "sha256:nope", "size": 1}, "layers": []}',
        b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"}',
        b'{"schemaVersion": 2, "mediaType": "text/plain", "manifests": []}',
    ],
)
async def test_malformed_manifest_is_manifest_invalid(client: httpx.AsyncClient, payload: bytes) -> None:
    await assert_refused(client, payload, mt.OCI_MANIFEST, 400, "MANIFEST_INVALID", catalog_before=[])


async def test_content_type_and_media_type_must_agree(client: httpx.AsyncClient) -> None:
    image = await push_image(client, "other", "v1")  # blobs are in "other"; the check comes first anyway
    response = await assert_refused(client, image.manifest, mt.DOCKER_MANIFEST, 400, "MANIFEST_INVALID")
    assert "does not match" in error_message(response)


async def test_unknown_manifest_media_type(client: httpx.AsyncClient) -> None:
    document: dict[str, Any] = json.loads(image_manifest(b"{}", []))
    document["mediaType"] = "application/vnd.example.manifest+json"
    payload = to_bytes(document)
    await assert_refused(client, payload, "application/vnd.example.manifest+json", 400, "MANIFEST_INVALID")


async def test_manifest_over_4_mib_is_413(client: httpx.AsyncClient) -> None:
    config = b"{}"
    await push_blob(client, "app", config)
    big = image_manifest(config, [], annotations={"padding": "x" * (4 * 1024 * 1024)})
    assert len(big) > mt.MAX_MANIFEST_BYTES
    await assert_refused(client, big, mt.OCI_MANIFEST, 413, "SIZE_INVALID", catalog_before=[])


async def test_manifest_over_4_mib_without_content_length_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> Any:
        for _ in range(5):
            yield b" " * (1024 * 1024)

    response = await client.put("/v2/app/manifests/v1", content=chunks(), headers={"Content-Type": mt.OCI_MANIFEST})
    assert response.status_code == 413
    assert error_code(response) == "SIZE_INVALID"


async def test_manifest_of_exactly_4_mib_is_accepted(client: httpx.AsyncClient) -> None:
    config = b"{}"
    await push_blob(client, "app", config)
    small = image_manifest(config, [], annotations={"padding": ""})
    payload = small.replace(b'"padding": ""', b'"padding": "' + b"x" * (mt.MAX_MANIFEST_BYTES - len(small)) + b'"')
    assert len(payload) == mt.MAX_MANIFEST_BYTES
    response = await put_manifest(client, "app", "v1", payload)
    assert response.status_code == 201, response.text


# Fetch and delete.


async def test_unknown_manifest(client: httpx.AsyncClient) -> None:
    await push_image(client, "app", "v1")
    for reference in ("nope", digest_of(b"nope")):
        await assert_no_manifest(client, "app", reference)
        head = await client.head(f"/v2/app/manifests/{reference}")
        assert head.status_code == 404
        assert head.content == b""
    await assert_no_manifest(client, "missing", "v1")


async def test_manifest_of_another_repository_is_unknown(client: httpx.AsyncClient) -> None:
    image = await push_image(client, "app", "v1")
    await assert_no_manifest(client, "other", image.digest)


async def test_delete_by_digest_removes_it_and_its_tags(client: httpx.AsyncClient) -> None:
    image = await push_image(client, "app", "v1")
    await put_manifest(client, "app", "v2", image.manifest)
    keep = await push_image(client, "app", "keep", seed="keep")
    response = await client.delete(f"/v2/app/manifests/{image.digest}")
    assert response.status_code == 202
    await assert_no_manifest(client, "app", image.digest)
    await assert_no_manifest(client, "app", "v1")
    await assert_no_manifest(client, "app", "v2")
    assert await tags(client, "app") == ["keep"]
    await assert_manifest(client, "app", "keep", keep.manifest, mt.OCI_MANIFEST)
    again = await client.delete(f"/v2/app/manifests/{image.digest}")
    assert again.status_code == 404
    assert error_code(again) == "MANIFEST_UNKNOWN"


async def test_delete_by_tag_keeps_the_manifest(client: httpx.AsyncClient) -> None:
    image = await push_image(client, "app", "v1")
    await put_manifest(client, "app", "v2", image.manifest)
    response = await client.delete("/v2/app/manifests/v1")
    assert response.status_code == 202
    await assert_no_manifest(client, "app", "v1")
    await assert_manifest(client, "app", "v2", image.manifest, mt.OCI_MANIFEST)
    await assert_manifest(client, "app", image.digest, image.manifest, mt.OCI_MANIFEST)
    assert await tags(client, "app") == ["v2"]


async def test_delete_unknown_manifest(client: httpx.AsyncClient) -> None:
    await push_image(client, "app", "v1")
    for reference in ("nope", digest_of(b"nope")):
        response = await client.delete(f"/v2/app/manifests/{reference}")
        assert response.status_code == 404
        assert error_code(response) == "MANIFEST_UNKNOWN"


async def test_repush_after_delete(client: httpx.AsyncClient) -> None:
    image = await push_image(client, "app", "v1")
    assert (await client.delete(f"/v2/app/manifests/{image.digest}")).status_code == 202
    response = await put_manifest(client, "app", "v1", image.manifest)
    assert response.status_code == 201
    await assert_manifest(client, "app", "v1", image.manifest, mt.OCI_MANIFEST)


async def test_bad_reference(client: httpx.AsyncClient) -> None:
    for method in ("GET", "PUT", "DELETE"):
        response = await client.request(method, "/v2/app/manifests/sha256:123")
        assert response.status_code == 400
        assert error_code(response) == "DIGEST_INVALID"

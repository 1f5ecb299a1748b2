"""OCI artifacts with the `oras` Python library: custom artifact types, subjects and the referrers API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import oras.oci
import oras.provider
import pytest
import requests

from . import OCI_EMPTY, OCI_INDEX, OCI_MANIFEST, Blob, Clients, Registry, canonical_json, sha256_digest

pytestmark = pytest.mark.clients

ARTIFACT_CONFIG = "application/vnd.trustyard.e2e.config.v1+json"
ARTIFACT_LAYER = "application/vnd.trustyard.e2e.payload.v1"
SIGNATURE_CONFIG = "application/vnd.trustyard.e2e.signature.v1+json"
SBOM_TYPE = "application/vnd.trustyard.e2e.sbom.v1+json"


class Oras(oras.provider.Registry):  # type: ignore[misc]
    """oras' client without its retry loop, which sleeps for minutes on a 500: a failure shows at once.

    oras-py keeps one token and, on a 401 asking for more scope (``error="insufficient_scope"``, as the
    Docker token spec and Distribution answer), retries with that same token; it fetches a new one only
    after a 403. Dropping its token on such a 401 makes it behave like docker, containerd and the oras CLI.
    """

    def do_request(self, *args: Any, **kwargs: Any) -> requests.Response:
        response: requests.Response = oras.provider.Registry.do_request.__wrapped__(self, *args, **kwargs)
        if response.status_code == 401 and "insufficient_scope" in response.headers.get("Www-Authenticate", ""):
            self.auth.token = None
            response = oras.provider.Registry.do_request.__wrapped__(self, *args, **kwargs)
        return response


@pytest.fixture
def oras_client(registry: Registry) -> Oras:
    """oras-py over TLS with the registry's CA, logged in with an app token (Distribution: plain HTTP)."""
    if not registry.tls:
        return Oras(hostname=registry.host, insecure=True)
    client = Oras(hostname=registry.host, tls_verify=str(registry.ca))
    client.auth.set_basic_auth("admin", registry.secret)
    return client


@pytest.fixture
def http(registry: Registry) -> Iterator[httpx.Client]:
    with registry.http() as client:
        yield client


def push_artifact(client: Oras, tmp_path: Path, target: str, **kwargs: Any) -> tuple[requests.Response, bytes]:
    """Push a one-file artifact with a custom config media type; return the response and the file's bytes."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    payload = f"payload of {target}\n".encode() + bytes(range(256)) * 64
    (tmp_path / "payload.bin").write_bytes(payload)
    (tmp_path / "config.json").write_text(json.dumps({"target": target}))
    config_type = kwargs.pop("config_type", ARTIFACT_CONFIG)
    response = client.push(
        target=target,
        files=[f"{tmp_path / 'payload.bin'}:{ARTIFACT_LAYER}"],
        manifest_config=f"{tmp_path / 'config.json'}:{config_type}",
        disable_path_validation=True,
        quiet=True,
        **kwargs,
    )
    assert response.status_code == 201, f"PUT manifest {target}: {response.status_code} {response.text}"
    return response, payload


def test_push_and_pull_artifact(
    oras_client: Oras, registry: Registry, http: httpx.Client, tmp_path: Path, repo: str
) -> None:
    target = f"{registry.host}/{repo}:artifact"
    response, payload = push_artifact(oras_client, tmp_path, target)
    digest = response.headers["Docker-Content-Digest"]

    manifest = oras_client.get_manifest(target)
    assert manifest["config"]["mediaType"] == ARTIFACT_CONFIG
    assert manifest["layers"][0]["mediaType"] == ARTIFACT_LAYER
    raw = http.get(f"/v2/{repo}/manifests/artifact", headers={"Accept": OCI_MANIFEST})
    assert raw.status_code == 200
    assert sha256_digest(raw.content) == digest

    out = tmp_path / "pulled"
    files = oras_client.pull(target=target, outdir=str(out))
    assert [Path(f).name for f in files] == ["payload.bin"]
    assert (out / "payload.bin").read_bytes() == payload


def test_artifact_readable_by_skopeo(
    oras_client: Oras, registry: Registry, clients: Clients, tmp_path: Path, repo: str
) -> None:
    response, _ = push_artifact(oras_client, tmp_path, f"{registry.host}/{repo}:artifact")
    raw = clients.inspect_raw(registry.ref(repo, "artifact"))
    assert sha256_digest(raw) == response.headers["Docker-Content-Digest"]
    assert json.loads(raw)["config"]["mediaType"] == ARTIFACT_CONFIG


def put_manifest(http: httpx.Client, repo: str, reference: str, blob: Blob) -> httpx.Response:
    return http.put(
        f"/v2/{repo}/manifests/{reference}",
        content=blob.data,
        headers={"Content-Type": blob.media_type},
    )


def push_blob(http: httpx.Client, repo: str, data: bytes) -> None:
    digest = sha256_digest(data)
    start = http.post(f"/v2/{repo}/blobs/uploads/")
    assert start.status_code == 202, f"POST /v2/{repo}/blobs/uploads/: {start.status_code} {start.text}"
    # The Location may carry its own query (Distribution's `_state`): add the digest to it.
    location = http.base_url.join(start.headers["Location"]).copy_add_param("digest", digest)
    done = http.put(location, content=data)
    assert done.status_code == 201, f"PUT {location}: {done.status_code} {done.text}"


@pytest.mark.trustyard_only(reason="CNCF Distribution 2.8.2 has no referrers API")
def test_referrers(oras_client: Oras, registry: Registry, http: httpx.Client, tmp_path: Path, repo: str) -> None:
    # The subject: an artifact pushed by oras.
    subject_response, _ = push_artifact(oras_client, tmp_path / "subject", f"{registry.host}/{repo}:subject")
    subject_digest = subject_response.headers["Docker-Content-Digest"]
    raw_subject = http.get(f"/v2/{repo}/manifests/{subject_digest}", headers={"Accept": OCI_MANIFEST})
    subject = oras.oci.Subject(mediaType=OCI_MANIFEST, digest=subject_digest, size=len(raw_subject.content))

    # Referrer 1, by oras with `subject`: no artifactType field, so its type is its config's media type.
    signature_response, _ = push_artifact(
        oras_client,
        tmp_path / "signature",
        f"{registry.host}/{repo}:signature",
        subject=subject,
        config_type=SIGNATURE_CONFIG,
    )
    signature_digest = signature_response.headers["Docker-Content-Digest"]
    assert signature_response.headers.get("OCI-Subject") == subject_digest

    # Referrer 2, by hand: an explicit artifactType over the empty config, with annotations.
    empty = b"{}"
    sbom_layer = b'{"sbom": "trustyard e2e"}'
    push_blob(http, repo, empty)
    push_blob(http, repo, sbom_layer)
    sbom = Blob(
        OCI_MANIFEST,
        canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": SBOM_TYPE,
                "config": {"mediaType": OCI_EMPTY, "digest": sha256_digest(empty), "size": len(empty)},
                "layers": [
                    {
                        "mediaType": "application/json",
                        "digest": sha256_digest(sbom_layer),
                        "size": len(sbom_layer),
                    }
                ],
                "subject": {"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": subject.size},
                "annotations": {"org.example.kind": "sbom"},
            }
        ),
    )
    put = put_manifest(http, repo, sbom.digest, sbom)
    assert put.status_code == 201, f"PUT manifest {sbom.digest}: {put.status_code} {put.text}"
    assert put.headers.get("OCI-Subject") == subject_digest

    url = f"/v2/{repo}/referrers/{subject_digest}"
    everything = http.get(url)
    assert everything.status_code == 200, f"GET {url}: {everything.status_code} {everything.text}"
    assert everything.headers["Content-Type"].startswith(OCI_INDEX)
    index = everything.json()
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == OCI_INDEX
    by_digest = {m["digest"]: m for m in index["manifests"]}
    assert set(by_digest) == {signature_digest, sbom.digest}
    assert by_digest[signature_digest]["artifactType"] == SIGNATURE_CONFIG
    assert by_digest[sbom.digest] == sbom.descriptor(artifactType=SBOM_TYPE, annotations={"org.example.kind": "sbom"})

    filtered = http.get(url, params={"artifactType": SBOM_TYPE})
    assert filtered.status_code == 200, f"GET {url}?artifactType={SBOM_TYPE}: {filtered.status_code} {filtered.text}"
    assert filtered.headers.get("OCI-Filters-Applied") == "artifactType"
    assert [m["digest"] for m in filtered.json()["manifests"]] == [sbom.digest]

    # A digest nothing refers to has an empty list, not a 404.
    unknown = http.get(f"/v2/{repo}/referrers/{sha256_digest(b'nothing')}")
    assert unknown.status_code == 200, f"GET referrers of an unknown digest: {unknown.status_code} {unknown.text}"
    assert unknown.json()["manifests"] == []

"""Python registry clients as their users configure them, over TLS verifying trustyard's CA:

- oras-py with its ``basic`` auth backend, which sends HTTP Basic on /v2/ itself (no token endpoint);
- python-dxf, which follows the Bearer challenge and asks only for the scope it names: its ``mount_blob``
  comes with a token for the destination alone.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import oras.oci
import oras.provider
import pytest
import requests
from dxf import DXF, DXFBase
from dxf.exceptions import DXFMountFailed

from . import OCI_MANIFEST, Registry, sha256_digest

pytestmark = pytest.mark.clients

ARTIFACT_CONFIG = "application/vnd.trustyard.e2e.config.v1+json"
ARTIFACT_LAYER = "application/vnd.trustyard.e2e.payload.v1"
SIGNATURE_CONFIG = "application/vnd.trustyard.e2e.signature.v1+json"


class BasicOras(oras.provider.Registry):  # type: ignore[misc]
    """oras-py with the ``basic`` backend, without its retry loop (which sleeps for minutes on a 500)."""

    def __init__(self, registry: Registry, username: str, secret: str) -> None:
        super().__init__(hostname=registry.host, tls_verify=str(registry.ca), auth_backend="basic")
        self.auth.set_basic_auth(username, secret)

    def do_request(self, *args: Any, **kwargs: Any) -> requests.Response:
        response: requests.Response = oras.provider.Registry.do_request.__wrapped__(self, *args, **kwargs)
        return response


@pytest.fixture
def basic_oras(registry: Registry) -> BasicOras:
    """Logged in as admin with the password (argon2 at its real cost: the per-worker cache keeps it to one)."""
    if not registry.tls:
        pytest.skip("needs trustyard: TLS with auth")
    return BasicOras(registry, "admin", registry.password or "")


@pytest.fixture
def http(registry: Registry) -> Iterator[httpx.Client]:
    with registry.http() as client:
        yield client


def push_artifact(client: BasicOras, tmp_path: Path, target: str, **kwargs: Any) -> tuple[str, bytes]:
    """Push a one-file artifact; its manifest digest and the file's bytes."""
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
    digest: str = response.headers["Docker-Content-Digest"]
    return digest, payload


# oras-py, basic backend ---------------------------------------------------------------------------------


def test_oras_basic_push_pull_tags_delete(
    basic_oras: BasicOras, registry: Registry, http: httpx.Client, tmp_path: Path, repo: str
) -> None:
    target = f"{registry.host}/{repo}"
    digest, payload = push_artifact(basic_oras, tmp_path / "v1", f"{target}:v1")
    second, _ = push_artifact(basic_oras, tmp_path / "v2", f"{target}:v2")

    raw = http.get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert sha256_digest(raw.content) == digest
    manifest = basic_oras.get_manifest(f"{target}:v1")
    assert manifest["layers"][0]["digest"] == sha256_digest(payload)

    files = basic_oras.pull(target=f"{target}:v1", outdir=str(tmp_path / "pulled"))
    assert [Path(f).name for f in files] == ["payload.bin"]
    assert sha256_digest((tmp_path / "pulled" / "payload.bin").read_bytes()) == sha256_digest(payload)

    assert sorted(basic_oras.get_tags(target)) == ["v1", "v2"]
    assert basic_oras.delete_tag(target, "v1") is True
    assert basic_oras.get_tags(target) == ["v2"]
    assert http.get(f"/v2/{repo}/manifests/{digest}").status_code == 404
    assert http.head(f"/v2/{repo}/manifests/v2").headers["docker-content-digest"] == second


@pytest.mark.trustyard_only(reason="CNCF Distribution 2.8.2 has no referrers API")
def test_oras_basic_push_with_a_subject(
    basic_oras: BasicOras, registry: Registry, http: httpx.Client, tmp_path: Path, repo: str
) -> None:
    target = f"{registry.host}/{repo}"
    subject_digest, _ = push_artifact(basic_oras, tmp_path / "subject", f"{target}:subject")
    size = len(http.get(f"/v2/{repo}/manifests/{subject_digest}", headers={"Accept": OCI_MANIFEST}).content)
    subject = oras.oci.Subject(mediaType=OCI_MANIFEST, digest=subject_digest, size=size)
    signature, _ = push_artifact(
        basic_oras, tmp_path / "signature", f"{target}:signature", subject=subject, config_type=SIGNATURE_CONFIG
    )

    referrers = http.get(f"/v2/{repo}/referrers/{subject_digest}")
    assert referrers.status_code == 200, referrers.text
    found = {m["digest"]: m for m in referrers.json()["manifests"]}
    assert list(found) == [signature]
    assert found[signature]["artifactType"] == SIGNATURE_CONFIG
    pulled = http.get(f"/v2/{repo}/manifests/{signature}", headers={"Accept": OCI_MANIFEST})
    assert sha256_digest(pulled.content) == signature
    assert pulled.json()["subject"]["digest"] == subject_digest


def test_oras_basic_wrong_password_is_refused(registry: Registry, repo: str) -> None:
    if not registry.tls:
        pytest.skip("needs trustyard: TLS with auth")
    client = BasicOras(registry, "admin", "not-the-password")
    refused = client.do_request(f"{registry.url}/v2/{repo}/tags/list")  # oras retried it with Basic
    assert refused.status_code == 401
    assert refused.request.headers["Authorization"].startswith("Basic ")
    assert refused.headers["Www-Authenticate"].startswith(f'Bearer realm="{registry.url}/auth/token"')


# python-dxf -----------------------------------------------------------------------------------------------


def dxf_client(registry: Registry, repository: str, username: str, secret: str) -> DXF:
    """python-dxf as its README sets it up: an ``auth`` callback that answers each challenge."""

    def auth(client: DXFBase, response: requests.Response) -> None:
        client.authenticate(username, secret, response=response)

    return DXF(registry.host, repository, auth, tlsverify=str(registry.ca))


def create_user(registry: Registry, source: str) -> tuple[str, str]:
    """A user of their own (owning ``NAME/*``) who may read ``source``, with an app token; (name, token)."""
    name = f"dxf-{uuid.uuid4().hex[:8]}"
    with httpx.Client(
        base_url=registry.url, verify=registry.ssl_context(), auth=("admin", registry.password or "")
    ) as api:
        assert api.post("/api/v1/users", json={"name": name, "password": f"{name}-password"}).status_code == 201
        granted = api.post("/api/v1/grants", json={"target": source, "role": "read", "user": name})
        assert granted.status_code == 201, granted.text
        token = api.post(f"/api/v1/users/{name}/tokens", json={"name": "dxf"}, auth=(name, f"{name}-password"))
        assert token.status_code == 201, token.text
        secret: str = token.json()["token"]
    return name, secret


@pytest.mark.trustyard_only(reason="users and grants are trustyard's")
def test_dxf_push_mount_alias_pull_delete(registry: Registry, tmp_path: Path, repo: str) -> None:
    source = dxf_client(registry, repo, "admin", registry.secret or "")
    first, second = b"first blob pushed by python-dxf\n" * 512, b"second blob\n" * 100
    (tmp_path / "first.bin").write_bytes(first)
    assert source.push_blob(str(tmp_path / "first.bin")) == sha256_digest(first)
    assert source.push_blob(data=iter([second]), digest=sha256_digest(second)) == sha256_digest(second)

    # A user who may read the source mounts into a repository of their own; python-dxf asks the token
    # endpoint only for the scope the challenge names (the destination), never for the source.
    user, token = create_user(registry, repo)
    copy = dxf_client(registry, f"{user}/copy", user, token)
    assert copy.mount_blob(repo, sha256_digest(first)) == sha256_digest(first)
    assert copy.blob_size(sha256_digest(first)) == len(first)

    manifest = json.loads(copy.set_alias("v1", sha256_digest(first)))
    assert manifest["layers"][0]["digest"] == sha256_digest(first)
    assert copy.get_alias("v1") == [sha256_digest(first)]
    assert copy.list_aliases() == ["v1"]
    pulled = b"".join(copy.pull_blob(sha256_digest(first)))
    assert sha256_digest(pulled) == sha256_digest(first)

    assert source.set_alias("both", sha256_digest(first), sha256_digest(second))
    assert source.get_alias("both") == [sha256_digest(first), sha256_digest(second)]
    assert b"".join(source.pull_blob(sha256_digest(second))) == second

    assert copy.del_alias("v1") == [sha256_digest(first)]
    assert copy.list_aliases() == []
    copy.del_blob(sha256_digest(first))
    with pytest.raises(requests.HTTPError, match="404"):
        copy.blob_size(sha256_digest(first))
    assert source.blob_size(sha256_digest(first)) == len(first)  # unlinked from the copy only


@pytest.mark.trustyard_only(reason="users and grants are trustyard's")
def test_dxf_mount_without_read_on_the_source_is_an_upload(registry: Registry, repo: str) -> None:
    source = dxf_client(registry, repo, "admin", registry.secret or "")
    data = b"a blob the user may not read\n"
    source.push_blob(data=iter([data]), digest=sha256_digest(data))
    user, token = create_user(registry, f"{repo}-other")  # reads another repository, not this one
    copy = dxf_client(registry, f"{user}/copy", user, token)
    with pytest.raises(DXFMountFailed):  # a 202 upload session instead of a mount, whether the blob exists or not
        copy.mount_blob(repo, sha256_digest(data))
    with pytest.raises(requests.HTTPError, match="404"):
        copy.blob_size(sha256_digest(data))


@pytest.mark.trustyard_only(reason="the Distribution target runs without auth")
def test_a_body_sent_before_credentials_still_gets_its_401(registry: Registry, repo: str) -> None:
    """Clients that send credentials only after a 401 (oras-py's basic backend) send the body first: the
    401 must reach them, not a connection reset, so that they retry with credentials."""
    url = f"{registry.url}/v2/{repo}/blobs/uploads/{uuid.uuid4()}?digest={sha256_digest(b'')}"
    with requests.Session() as session:
        for _ in range(10):
            refused = session.put(url, data=b"x" * 1_000_000, verify=str(registry.ca))
            assert refused.status_code == 401

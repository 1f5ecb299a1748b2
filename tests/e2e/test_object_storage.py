"""trustyard on cloud object storage, end to end: Swift (v1.0 auth), Swift's S3 API and moto, real clients.

* skopeo, docker and oras push and pull through trustyard on each backend;
* the bucket outlives the registry: a new trustyard with an empty data directory adopts the bucket (at start,
  and with `trustyard storage reindex`) and serves every repository, tag, manifest and referrer again; one
  that starts while the store does not answer starts all the same and adopts the bucket once it answers;
* CNCF Distribution 2.8.2 and trustyard read each other's buckets (the same `storage:` block, both ways);
* a store that fails every request gives the client a 503 with the OCI error body and leaves no blob; the log
  has the store's message, never its secret; once the store recovers, the same push succeeds.

Each test has its own bucket or container (tests/e2e/stores.py), emptied and removed afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import oras.oci
import pytest

from tests.storage.faults import Fault

from . import (
    BUSYBOX,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    Blob,
    Clients,
    Docker,
    Image,
    ImageIndex,
    Registry,
    busybox_image,
    canonical_json,
    local_blobs_ok,
    oci_layout_descriptor,
    population,
    run,
    sha256_digest,
    trustyard_bin,
)
from .stores import PREFIX, Store, ThreadedFaultProxy, running, wait_adopted
from .test_docker import PULLED, build, push, repo_digests
from .test_interop import OTHER_REPO, REPO, images, push_all
from .test_interop import check_all as interop_check_all
from .test_oras import Oras, push_artifact, push_blob, put_manifest

pytestmark = [
    pytest.mark.clients,
    pytest.mark.trustyard_only(reason="runs trustyard (and Distribution) on object storage itself"),
]

SBOM_TYPE = "application/vnd.trustyard.e2e.sbom.v1+json"
ACCEPT = ", ".join(
    [
        OCI_MANIFEST,
        OCI_INDEX,
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


@pytest.fixture
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """A fresh bucket (S3) or container name (Swift: the driver creates it), emptied and removed afterwards."""
    made = Store.create(request.param)
    try:
        yield made
    finally:
        made.remove()


def stores(*kinds: str) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("store", kinds, indirect=True)


def blob_key(store: Store, digest: str) -> str:
    """Where Distribution's layout puts a blob's bytes in this store (Swift: under `<prefix>/files/`)."""
    hex_ = digest.removeprefix("sha256:")
    root = f"{PREFIX}/files/" if store.kind == "swift" else f"{PREFIX}/"
    return f"{root}docker/registry/v2/blobs/sha256/{hex_[:2]}/{hex_}/data"


# --------------------------------------------------------------------------------------------------------
# 1. Real clients on every backend: skopeo, then oras (with a referrer) or docker


@pytest.mark.parametrize(
    ("store", "other"),
    [("swift", "oras"), ("s3", "docker"), ("moto", "oras")],
    indirect=["store"],
    ids=["swift-skopeo-oras", "s3-skopeo-docker", "moto-skopeo-oras"],
)
def test_clients_push_and_pull(
    request: pytest.FixtureRequest,
    store: Store,
    other: str,
    clients: Clients,
    busybox: Image,
    busybox_layout: Path,
    tmp_path: Path,
) -> None:
    docker: Docker | None = request.getfixturevalue("docker_engine") if other == "docker" else None
    with running("trustyard", tmp_path / "data", store.storage()) as registry:
        clients.login(registry)
        repo = "cloud/skopeo"
        assert clients.push(busybox_layout, "latest", registry.ref(repo, "v1")) == busybox.digest
        clients.copy(registry.ref(repo, "v1"), f"oci:{tmp_path / 'pulled'}:v1")
        assert oci_layout_descriptor(tmp_path / "pulled", "v1")["digest"] == busybox.digest
        local_blobs_ok(tmp_path / "pulled", busybox.blobs())
        # The bytes are in the bucket, in Distribution's layout under the root directory (the manifest too).
        assert store.blob_keys() == sorted(blob_key(store, blob.digest) for blob in busybox.blobs())

        if docker is not None:
            docker_round_trip(registry, tmp_path, docker)
        else:
            oras_round_trip(registry, tmp_path)


def oras_round_trip(registry: Registry, tmp_path: Path) -> None:
    """oras pushes an artifact and a referrer with a subject, the referrers API lists it, the files pull back."""
    client = Oras(hostname=registry.host, tls_verify=str(registry.ca))
    client.auth.set_basic_auth("admin", registry.secret)
    target = f"{registry.host}/cloud/oras:artifact"
    response, payload = push_artifact(client, tmp_path / "artifact", target)
    subject_digest = response.headers["Docker-Content-Digest"]
    with registry.http() as http:
        raw = http.get(f"/v2/cloud/oras/manifests/{subject_digest}", headers={"Accept": OCI_MANIFEST})
        assert raw.status_code == 200
        assert sha256_digest(raw.content) == subject_digest
        subject = oras.oci.Subject(mediaType=OCI_MANIFEST, digest=subject_digest, size=len(raw.content))
        referrer, _ = push_artifact(
            client, tmp_path / "signature", f"{registry.host}/cloud/oras:signature", subject=subject
        )
        assert referrer.headers.get("OCI-Subject") == subject_digest
        listed = http.get(f"/v2/cloud/oras/referrers/{subject_digest}")
        assert listed.status_code == 200, listed.text
        assert [m["digest"] for m in listed.json()["manifests"]] == [referrer.headers["Docker-Content-Digest"]]
    files = client.pull(target=target, outdir=str(tmp_path / "oras-out"))
    assert [Path(f).name for f in files] == ["payload.bin"]
    assert (tmp_path / "oras-out" / "payload.bin").read_bytes() == payload


def docker_round_trip(registry: Registry, tmp_path: Path, docker: Docker) -> None:
    """docker builds, pushes, forgets and pulls back an image (blob GETs redirect to the store)."""
    tag = f"{registry.host}/cloud/docker:v1"
    docker.login(registry)
    dockerfile = 'FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox", "true"]\n'
    build(docker, tmp_path / "ctx", tag, dockerfile, {"busybox": BUSYBOX})
    pushed = push(docker, tag)
    docker("rmi", tag)
    out = docker("pull", tag).stdout
    pulled = PULLED.search(out)
    assert pulled is not None, f"docker pull {tag}: no digest in its output:\n{out}"
    assert pulled.group(1) == pushed
    assert repo_digests(docker, tag) == [f"{registry.host}/cloud/docker@{pushed}"]
    docker("rmi", tag)


# --------------------------------------------------------------------------------------------------------
# 2. The bucket outlives the registry


def tagged_images() -> dict[str, Image | ImageIndex]:
    """test_interop's set (REPO: 1.0 and latest; OTHER_REPO: a multi-arch index), and a third tag on 1.0."""
    tagged = images()
    tagged["stable"] = busybox_image("interop-1.0")
    return tagged


def push_referrer(registry: Registry, subject: Image) -> str:
    """An SBOM artifact (artifactType, empty config) whose subject is `subject`, pushed by digest; its digest."""
    empty, layer = b"{}", b'{"sbom": "trustyard e2e cloud"}'
    sbom = Blob(
        OCI_MANIFEST,
        canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": SBOM_TYPE,
                "config": {"mediaType": OCI_EMPTY, "digest": sha256_digest(empty), "size": len(empty)},
                "layers": [{"mediaType": "application/json", "digest": sha256_digest(layer), "size": len(layer)}],
                "subject": subject.manifest.descriptor(),
                "annotations": {"org.example.kind": "sbom"},
            }
        ),
    )
    with registry.http() as http:
        push_blob(http, REPO, empty)
        push_blob(http, REPO, layer)
        put = put_manifest(http, REPO, sbom.digest, sbom)
        assert put.status_code == 201, f"PUT manifest {sbom.digest}: {put.status_code} {put.text}"
    return sbom.digest


def snapshot(registry: Registry, subject: str | None, referrers: bool = True) -> dict[str, Any]:
    """What the registry serves: its catalog, every repository's tags with the digest and bytes of what each
    tag names (also fetched by digest), and the referrers of `subject` in REPO."""
    seen: dict[str, Any] = {}
    with registry.http() as http:
        catalog = http.get("/v2/_catalog")
        assert catalog.status_code == 200, catalog.text
        seen["catalog"] = sorted(catalog.json()["repositories"])
        for repo in seen["catalog"]:
            listed = http.get(f"/v2/{repo}/tags/list")
            assert listed.status_code == 200, listed.text
            for tag in sorted(listed.json()["tags"]):
                by_tag = http.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT})
                assert by_tag.status_code == 200, f"{repo}:{tag}: {by_tag.status_code} {by_tag.text}"
                digest = sha256_digest(by_tag.content)
                assert by_tag.headers["Docker-Content-Digest"] == digest
                by_digest = http.get(f"/v2/{repo}/manifests/{digest}", headers={"Accept": ACCEPT})
                assert by_digest.content == by_tag.content
                seen[f"{repo}:{tag}"] = (digest, by_tag.content)
        if subject is not None and referrers:
            listed = http.get(f"/v2/{REPO}/referrers/{subject}")
            assert listed.status_code == 200, listed.text
            seen["referrers"] = sorted(listed.json()["manifests"], key=lambda m: str(m["digest"]))
    return seen


def check_all(reader: Registry, clients: Clients, where: Path, tagged: Mapping[str, Image | ImageIndex]) -> None:
    """test_interop's check (tags list, manifest bytes, skopeo pulls every blob intact) into `where`."""
    where.mkdir(parents=True, exist_ok=True)
    interop_check_all(reader, clients, where, tagged)


def reindex(config: Path, data_dir: Path) -> dict[str, Any]:
    proc = run([trustyard_bin(), "storage", "reindex", "--config", config, "--data-dir", data_dir], env=os.environ)
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


@stores("swift", "s3")
def test_the_bucket_outlives_the_registry(store: Store, clients: Clients, tmp_path: Path) -> None:
    tagged = tagged_images()
    subject = tagged["1.0"]
    assert isinstance(subject, Image)
    first = tmp_path / "first"
    with running("trustyard", first, store.storage()) as writer:
        clients.login(writer)
        push_all(writer, clients, tmp_path / "push", tagged)
        sbom = push_referrer(writer, subject)
        before = snapshot(writer, subject.digest)
    assert before["catalog"] == sorted([REPO, OTHER_REPO])
    assert [m["digest"] for m in before["referrers"]] == [sbom]
    assert before["referrers"][0]["artifactType"] == SBOM_TYPE

    # The registry is gone with its data directory (SQL index, keys, CA); only the bucket remains.
    shutil.rmtree(first)
    with running("trustyard", tmp_path / "second", store.storage()) as adopted:
        assert "index is empty: adopting the repositories storage holds" in adopted.server.log_tail(200)
        wait_adopted(adopted)  # indexed in the background, while it serves
        clients.login(adopted)
        assert snapshot(adopted, subject.digest) == before
        check_all(adopted, clients, tmp_path / "pull-adopted", tagged)

    # The same, by the operator's command on yet another empty data directory.
    config = tmp_path / "config.yml"
    config.write_text(json.dumps({"storage": store.storage()}))
    report = reindex(config, tmp_path / "third")
    assert (report["repositories"], report["tags"], report["skipped"]) == (2, 4, []), report
    # 1.0/stable, latest, the index, its two images, the SBOM
    assert report["manifests"] == 6, report
    with running("trustyard", tmp_path / "third", store.storage()) as reindexed:
        assert "adopting" not in reindexed.server.log_tail(200)  # the command did it; serve found an index
        clients.login(reindexed)
        assert snapshot(reindexed, subject.digest) == before


def wait_adopted_or_retry(registry: Registry) -> dict[str, Any]:
    """``wait_adopted``; should the attempt have given up before the store came back, the retry that
    services/adoption.py begins a minute later is asked for now."""
    assert registry.password is not None
    with httpx.Client(verify=registry.ssl_context(), auth=("admin", registry.password), timeout=30) as api:
        url, deadline = f"{registry.url}/api/v1/settings/storage/adoption", time.monotonic() + 120
        while (state := api.get(url).json())["state"] == "running":
            assert time.monotonic() < deadline, state
            time.sleep(0.2)
        if state["state"] == "failed":
            assert api.post(url).status_code == 202
    return wait_adopted(registry)


@stores("moto")
def test_a_registry_starts_while_its_store_does_not_answer(store: Store, tmp_path: Path) -> None:
    """A node rebooted with its object store still down must come up (health, tokens, the admin API) and
    adopt the bucket once the store answers, not exit: the index cannot say what the bucket holds then."""
    with running("trustyard", tmp_path / "first", store.storage()) as writer, writer.http() as http:
        pushed = population.push_image(http, "down/app", "v1", seed=1, size=4096, base=(2, 4096))
    with ThreadedFaultProxy(store.url) as proxy:
        proxy.always(Fault.reset())
        through = store.with_endpoint(proxy.url)
        with running("trustyard", tmp_path / "second", through.storage()) as registry, registry.http() as http:
            assert "storage did not answer at start" in registry.server.log_tail(200)
            assert http.get("/v2/").status_code == 200
            assert http.get("/v2/down/app/manifests/v1").status_code == 404  # nothing indexed yet
            proxy.always(None)  # the store is back while the adoption begun at start still retries its listing
            assert wait_adopted_or_retry(registry)["manifests"] == 1
            got = http.get("/v2/down/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
            assert got.status_code == 200
            assert got.headers["Docker-Content-Digest"] == pushed.digest


# --------------------------------------------------------------------------------------------------------
# 3. Both ways with CNCF Distribution 2.8.2


def without_referrers(seen: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in seen.items() if k != "referrers"}


@stores("swift", "s3")
def test_distribution_bucket_adopted_by_trustyard(store: Store, clients: Clients, tmp_path: Path) -> None:
    tagged = tagged_images()
    subject = tagged["1.0"]
    assert isinstance(subject, Image)
    with running("distribution", tmp_path / "distribution", store.storage()) as writer:
        clients.login(writer)
        push_all(writer, clients, tmp_path / "push", tagged)
        sbom = push_referrer(writer, subject)  # Distribution 2.8 stores it; it has no referrers API
        before = snapshot(writer, None)
    names = store.names()
    assert blob_key(store, subject.layers[0].digest) in names
    if store.kind == "swift":  # Distribution's swift layout: files/ and segments/ under the prefix
        assert any(n.startswith(f"{PREFIX}/segments/") for n in names), names

    with running("trustyard", tmp_path / "data", store.storage()) as reader:
        assert "adopting the repositories storage holds in the background" in reader.server.log_tail(200)
        wait_adopted(reader)
        clients.login(reader)
        after = snapshot(reader, subject.digest)
        assert without_referrers(after) == before
        assert [m["digest"] for m in after["referrers"]] == [sbom]  # found by the reindex
        check_all(reader, clients, tmp_path / "pull", tagged)


@stores("swift", "s3")
def test_trustyard_bucket_served_by_distribution(store: Store, clients: Clients, tmp_path: Path) -> None:
    tagged = tagged_images()
    subject = tagged["1.0"]
    assert isinstance(subject, Image)
    with running("trustyard", tmp_path / "data", store.storage()) as writer:
        clients.login(writer)
        push_all(writer, clients, tmp_path / "push", tagged)
        sbom = push_referrer(writer, subject)
        before = snapshot(writer, subject.digest)

    with running("distribution", tmp_path / "distribution", store.storage()) as reader:
        clients.login(reader)
        after = snapshot(reader, None)
        assert after == without_referrers(before)
        check_all(reader, clients, tmp_path / "pull", tagged)
        with reader.http() as http:
            referrer = http.get(f"/v2/{REPO}/manifests/{sbom}", headers={"Accept": OCI_MANIFEST})
            assert referrer.status_code == 200
            assert sha256_digest(referrer.content) == sbom


# --------------------------------------------------------------------------------------------------------
# 5. Faults at the registry level


def push_blob_session(http: httpx.Client, repo: str, data: bytes) -> httpx.Response:
    """A blob push as clients do it (POST a session, PUT the bytes with the digest); the first failure or the
    final response."""
    start = http.post(f"/v2/{repo}/blobs/uploads/")
    if start.status_code != 202:
        return start
    return http.put(start.headers["Location"], params={"digest": sha256_digest(data)}, content=data)


@stores("s3", "swift")
def test_a_failing_store_gives_503_and_stores_nothing(store: Store, tmp_path: Path) -> None:
    # More than an S3 part: the first request to the store opens a multipart upload, and the store's error
    # for it has a body to pass on (a smaller blob is put whole, after a HEAD whose error has no body).
    data = os.urandom(6 * 1024 * 1024)
    digest = sha256_digest(data)
    repo = "cloud/faults"
    with ThreadedFaultProxy(store.url) as proxy:
        through = store.with_endpoint(proxy.url)
        with running("trustyard", tmp_path / "data", through.storage()) as registry, registry.http() as http:
            assert http.get("/v2/").status_code == 200  # a token first: the token endpoint needs no storage

            proxy.always(Fault.slow_down())
            response = push_blob_session(http, repo, data)
            assert response.status_code == 503, f"{response.status_code} {response.text}"
            errors = response.json()["errors"]
            assert [e["code"] for e in errors] == ["UNAVAILABLE"], errors
            assert "503" in errors[0]["message"], errors  # the store's own answer, passed on
            assert http.head(f"/v2/{repo}/blobs/{digest}").status_code == 404
            assert store.names() == []  # nothing at all in the bucket, seen directly
            if store.kind == "s3":
                assert store.s3().list_multipart_uploads(Bucket=store.name).get("Uploads", []) == []

            log = registry.server.log.read_text(errors="replace")
            assert "injected by FaultProxy" in log  # the store's message
            assert "SlowDown" in log or "503" in log
            assert store.secret not in log  # never the secret key or password

            proxy.always(None)
            response = push_blob_session(http, repo, data)
            assert response.status_code == 201, f"{response.status_code} {response.text}"
            assert response.headers["Docker-Content-Digest"] == digest
            assert http.head(f"/v2/{repo}/blobs/{digest}").status_code == 200
            pulled = http.get(f"/v2/{repo}/blobs/{digest}", follow_redirects=True)
            assert pulled.status_code == 200
            assert pulled.content == data
            assert store.blob_keys() == [blob_key(store, digest)]


@stores("swift")
def test_a_small_blob_is_one_plain_object_on_swift(store: Store, tmp_path: Path) -> None:
    """Under `min_part_size` (1 MiB on Swift) a blob pushed as clients do (POST, PATCH, PUT) is put whole: no
    upload marker, no segment and no SLO manifest, half the requests of a one-segment upload. A larger blob
    still goes through segments (so the check below can see them)."""
    small, large = os.urandom(64 * 1024), os.urandom(2 * 1024 * 1024)
    with running("trustyard", tmp_path / "data", store.storage()) as registry, registry.http() as http:
        assert http.get("/v2/").status_code == 200
        start = http.post("/v2/cloud/small/blobs/uploads/")
        patched = http.patch(start.headers["Location"], content=small)
        assert patched.status_code == 202, patched.text
        done = http.put(patched.headers["Location"], params={"digest": sha256_digest(small)})
        assert done.status_code == 201, done.text
        assert [n for n in store.names() if n.startswith(f"{PREFIX}/segments/")] == []
        assert push_blob_session(http, "cloud/small", large).status_code == 201
        assert [n for n in store.names() if n.startswith(f"{PREFIX}/segments/")] != []
        for data in (small, large):
            pulled = http.get(f"/v2/cloud/small/blobs/{sha256_digest(data)}")
            assert pulled.status_code == 200
            assert pulled.content == data

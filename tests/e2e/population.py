"""A registry full of images, pushed through the registry API with httpx, and the check that every one of
them pulls back verified: for tests that must show nothing was lost (storage migrations, upgrades, restores).

`populate(http, Shape(...))` pushes `images` image manifests spread over `repositories` repositories: each
image has a config, one of a few shared base layers and a layer of its own; every `index_every`-th tag is a
multi-arch index over two images; every `referrer_every`-th image gets a referrer (an artifact whose
`subject` is the image) pushed by digest; every `sha512_every`-th image has its own layer and config named
by sha512 digests (and its referrer is stored under a sha512 digest). Layer bytes are drawn from seeds,
never held: a population of a GiB costs a few MiB of memory. `verify(http, population)` pulls every tag and
referrer and checks each manifest's and blob's digest.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from . import OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST, canonical_json

MiB = 1024 * 1024
ARTIFACT = "application/vnd.example.signature.v1"
EMPTY_JSON = b"{}"


@dataclass(frozen=True)
class Shape:
    images: int = 200
    repositories: int = 20
    total_bytes: int = 1024 * MiB  # all layers together, roughly
    base_layers: int = 4
    index_every: int = 10
    referrer_every: int = 8
    sha512_every: int = 5
    seed: int = 11

    @property
    def own_layer(self) -> int:
        """Bytes of each image's own layer: what the shared bases leave of ``total_bytes``."""
        return max(1024, (self.total_bytes - self.base_layers * self.base_layer) // self.images)

    @property
    def base_layer(self) -> int:
        return max(1024, self.total_bytes // 20 // self.base_layers)


@dataclass(frozen=True)
class Pushed:
    """One manifest as pushed: its digest and every blob (digest → size) it needs, itself excluded."""

    repository: str
    reference: str  # a tag, or a digest for referrers
    digest: str
    media_type: str
    blobs: dict[str, int]


@dataclass
class Population:
    manifests: list[Pushed] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, pushed: Pushed) -> None:
        with self.lock:
            self.manifests.append(pushed)

    @property
    def blobs(self) -> dict[str, int]:
        with self.lock:
            return {d: s for m in self.manifests for d, s in m.blobs.items()}

    @property
    def size(self) -> int:
        return sum(self.blobs.values())


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def seeded(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def push_blob(http: httpx.Client, repository: str, data: bytes, algorithm: str = "sha256") -> str:
    """A monolithic upload (POST, then PUT with the bytes); the blob's digest."""
    digest = digest_of(data, algorithm)
    if http.head(f"/v2/{repository}/blobs/{digest}").status_code == 200:
        return digest
    start = http.post(f"/v2/{repository}/blobs/uploads/")
    assert start.status_code == 202, f"POST {repository} uploads: {start.status_code} {start.text}"
    location = http.base_url.join(start.headers["Location"]).copy_add_param("digest", digest)
    done = http.put(location, content=data, headers={"Content-Type": "application/octet-stream"})
    assert done.status_code == 201, f"PUT {repository} blob {digest}: {done.status_code} {done.text}"
    return digest


def put_manifest(http: httpx.Client, repository: str, reference: str, body: bytes, media_type: str) -> str:
    put = http.put(f"/v2/{repository}/manifests/{reference}", content=body, headers={"Content-Type": media_type})
    assert put.status_code == 201, f"PUT {repository}:{reference}: {put.status_code} {put.text}"
    digest: str = put.headers["Docker-Content-Digest"]
    return digest


def _descriptor(media_type: str, digest: str, size: int, **extra: object) -> dict[str, object]:
    return {"mediaType": media_type, "digest": digest, "size": size, **extra}


def push_image(
    http: httpx.Client, repository: str, tag: str, seed: int, size: int, base: tuple[int, int], *, sha512: bool = False
) -> Pushed:
    """An image: config, one shared base layer (seed, size) and its own layer of ``size`` bytes from ``seed``."""
    algorithm = "sha512" if sha512 else "sha256"
    base_data = seeded(*base)
    own = seeded(seed, size)
    config = canonical_json({"architecture": "amd64", "os": "linux", "seed": seed, "tag": tag})
    layers = [(push_blob(http, repository, base_data), len(base_data))]
    layers.append((push_blob(http, repository, own, algorithm), len(own)))
    del own, base_data
    config_digest = push_blob(http, repository, config, algorithm)
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _descriptor(OCI_CONFIG, config_digest, len(config)),
            "layers": [_descriptor(OCI_LAYER_GZIP, d, s) for d, s in layers],
        }
    )
    digest = put_manifest(http, repository, tag, manifest, OCI_MANIFEST)
    blobs = {config_digest: len(config), **dict(layers)}
    return Pushed(repository, tag, digest, OCI_MANIFEST, blobs)


def push_index(http: httpx.Client, repository: str, tag: str, images: list[Pushed]) -> Pushed:
    """A multi-arch index over ``images`` (already pushed by tag), tagged ``tag``."""
    entries = []
    for image, arch in zip(images, ["amd64", "arm64"], strict=False):
        size = len(http.get(f"/v2/{repository}/manifests/{image.digest}", headers={"Accept": OCI_MANIFEST}).content)
        entries.append(_descriptor(OCI_MANIFEST, image.digest, size, platform={"architecture": arch, "os": "linux"}))
    body = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    digest = put_manifest(http, repository, tag, body, OCI_INDEX)
    blobs = {d: s for image in images for d, s in image.blobs.items()}
    blobs.update({image.digest: 0 for image in images})  # child manifests: checked as manifests, size unknown
    return Pushed(repository, tag, digest, OCI_INDEX, blobs)


def push_referrer(http: httpx.Client, subject: Pushed, size: int, *, sha512: bool = False) -> Pushed:
    """A signature-like artifact whose subject is ``subject``, pushed by digest (sha512 when asked)."""
    repository = subject.repository
    empty = push_blob(http, repository, EMPTY_JSON)
    payload = canonical_json({"signed": subject.digest, "size": size})
    layer = push_blob(http, repository, payload)
    subject_size = len(
        http.get(f"/v2/{repository}/manifests/{subject.digest}", headers={"Accept": OCI_MANIFEST}).content
    )
    body = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": ARTIFACT,
            "config": _descriptor("application/vnd.oci.empty.v1+json", empty, len(EMPTY_JSON)),
            "layers": [_descriptor("application/octet-stream", layer, len(payload))],
            "subject": _descriptor(OCI_MANIFEST, subject.digest, subject_size),
        }
    )
    digest = digest_of(body, "sha512" if sha512 else "sha256")
    stored = put_manifest(http, repository, digest, body, OCI_MANIFEST)
    assert stored == digest, f"stored as {stored}, pushed as {digest}"
    return Pushed(repository, digest, digest, OCI_MANIFEST, {empty: len(EMPTY_JSON), layer: len(payload)})


def plan(shape: Shape) -> Iterator[tuple[int, str, str]]:
    """(number, repository, tag) of every image of the population."""
    for n in range(shape.images):
        yield n, f"mig/r{n % shape.repositories:02d}", f"v{n // shape.repositories}"


def populate(http_factory: Callable[[], httpx.Client], shape: Shape, threads: int = 4) -> Population:
    """Push ``shape`` through the registry API with ``threads`` clients (``http_factory()`` makes each)."""
    population = Population()
    bases = [(shape.seed * 1000 + b, shape.base_layer) for b in range(shape.base_layers)]

    def one(item: tuple[int, str, str]) -> None:
        n, repository, tag = item
        with http_factory() as http:
            sha512 = n % shape.sha512_every == 1
            image = push_image(
                http, repository, tag, shape.seed * 100000 + n, shape.own_layer, bases[n % len(bases)], sha512=sha512
            )
            population.add(image)
            if n % shape.index_every == 0:
                arm = push_image(http, repository, f"{tag}-arm64", shape.seed * 100000 + n + 50000, 4096, bases[0])
                population.add(arm)
                population.add(push_index(http, repository, f"{tag}-multi", [image, arm]))
            if n % shape.referrer_every == 0:
                population.add(push_referrer(http, image, shape.own_layer, sha512=n % (2 * shape.referrer_every) == 0))

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, plan(shape)))
    return population


def verify(http: httpx.Client, population: Population) -> dict[str, int]:
    """Pull every manifest (by its tag or digest) and every blob it needs; each digest checked. Counts."""
    checked: set[str] = set()
    counts = {"manifests": 0, "blobs": 0, "bytes": 0}
    for pushed in list(population.manifests):
        got = http.get(
            f"/v2/{pushed.repository}/manifests/{pushed.reference}",
            headers={"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"},
        )
        assert got.status_code == 200, f"GET {pushed.repository}:{pushed.reference}: {got.status_code} {got.text}"
        algorithm = pushed.digest.partition(":")[0]
        assert digest_of(got.content, algorithm) == pushed.digest, f"{pushed.repository}:{pushed.reference}"
        counts["manifests"] += 1
        for digest, size in pushed.blobs.items():
            if f"{pushed.repository}@{digest}" in checked or size == 0:
                continue
            checked.add(f"{pushed.repository}@{digest}")
            algorithm = digest.partition(":")[0]
            hasher = hashlib.new(algorithm)
            with http.stream("GET", f"/v2/{pushed.repository}/blobs/{digest}", follow_redirects=True) as blob:
                assert blob.status_code == 200, f"GET {pushed.repository} blob {digest}: {blob.status_code}"
                for chunk in blob.iter_bytes():
                    hasher.update(chunk)
            assert f"{algorithm}:{hasher.hexdigest()}" == digest, f"{pushed.repository} blob {digest}"
            counts["blobs"] += 1
            counts["bytes"] += size
    referrers = [m for m in population.manifests if m.reference.startswith("sha")]
    for referrer in referrers:
        subject = json.loads(http.get(f"/v2/{referrer.repository}/manifests/{referrer.digest}").content)["subject"]
        listed = http.get(f"/v2/{referrer.repository}/referrers/{subject['digest']}").json()
        assert referrer.digest in [m["digest"] for m in listed["manifests"]], f"referrers of {subject['digest']}"
    return counts

"""The only module that builds storage keys: CNCF Distribution's v2 storage layout.

Keeping Distribution's layout byte for byte is what makes a root adoptable both ways (Distribution, DTR and
Harbor roots served by trustyard; trustyard roots served by Distribution)::

    docker/registry/v2/
    ├── blobs/sha256/ab/abcdef…/data                      blob (and manifest) bytes, shared by all repos
    └── repositories/<name>/
        ├── _layers/sha256/abcdef…/link                   "sha256:abcdef…": blob linked into <name>
        ├── _manifests/revisions/sha256/abcdef…/link      manifest known in <name>
        ├── _manifests/tags/<tag>/current/link            digest the tag points to now
        ├── _manifests/tags/<tag>/index/sha256/…/link     every digest the tag has pointed to
        └── _uploads/<id>/data, startedat                 upload staging (never a visible blob)

Keys are relative to the driver's root directory.
"""

from __future__ import annotations

from dataclasses import dataclass

from trustyard.errors import DigestInvalid, NameInvalid, TagInvalid
from trustyard.oci.digest import Digest
from trustyard.oci.names import RepositoryName, Tag

ROOT = "docker/registry/v2"
BLOBS = f"{ROOT}/blobs"
REPOSITORIES = f"{ROOT}/repositories"


def blob_data(digest: Digest) -> str:
    return f"{BLOBS}/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}/data"


def blob_dir(digest: Digest) -> str:
    return f"{BLOBS}/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}"


def repository(name: RepositoryName) -> str:
    return f"{REPOSITORIES}/{name.value}"


def layer_link(name: RepositoryName, digest: Digest) -> str:
    return f"{REPOSITORIES}/{name.value}/_layers/{digest.algorithm}/{digest.hex}/link"


def revision_link(name: RepositoryName, digest: Digest) -> str:
    return f"{REPOSITORIES}/{name.value}/_manifests/revisions/{digest.algorithm}/{digest.hex}/link"


def tag_dir(name: RepositoryName, tag: Tag) -> str:
    return f"{REPOSITORIES}/{name.value}/_manifests/tags/{tag.value}"


def tag_current_link(name: RepositoryName, tag: Tag) -> str:
    return f"{tag_dir(name, tag)}/current/link"


def tag_index_link(name: RepositoryName, tag: Tag, digest: Digest) -> str:
    return f"{tag_dir(name, tag)}/index/{digest.algorithm}/{digest.hex}/link"


def upload_dir(name: RepositoryName, upload_id: str) -> str:
    return f"{REPOSITORIES}/{name.value}/_uploads/{upload_id}"


def upload_data(name: RepositoryName, upload_id: str) -> str:
    return f"{upload_dir(name, upload_id)}/data"


def upload_started_at(name: RepositoryName, upload_id: str) -> str:
    return f"{upload_dir(name, upload_id)}/startedat"


def upload_parked(upload_key: str, token: str) -> str:
    """A small object beside an upload's data holding bytes not yet sent as a part (see services/uploads)."""
    return f"{upload_key.rpartition('/')[0]}/parked-{token}"


def link_body(digest: Digest) -> bytes:
    return str(digest).encode()


def parse_link(body: bytes) -> Digest:
    return Digest.parse(body.decode("ascii", "replace").strip())


# Reading keys back (reindex): what a key under repositories/ stands for.


@dataclass(frozen=True, slots=True)
class LayerLink:
    repository: str
    digest: Digest


@dataclass(frozen=True, slots=True)
class RevisionLink:
    repository: str
    digest: Digest


@dataclass(frozen=True, slots=True)
class TagLink:
    repository: str
    tag: str


RepositoryKey = LayerLink | RevisionLink | TagLink


def classify(key: str) -> RepositoryKey | None:
    """What a key under ``repositories/`` is, or None for anything else (uploads, index links, junk)."""
    if not key.startswith(REPOSITORIES + "/") or not key.endswith("/link"):
        return None
    rest = key[len(REPOSITORIES) + 1 : -len("/link")]
    try:
        for marker in ("/_layers/", "/_manifests/revisions/"):
            head, sep, tail = rest.rpartition(marker)
            if sep and head:
                algorithm, slash, hex_ = tail.partition("/")
                if not slash:
                    return None
                name, digest = RepositoryName.parse(head), Digest.parse(f"{algorithm}:{hex_}")
                return LayerLink(name.value, digest) if marker == "/_layers/" else RevisionLink(name.value, digest)
        head, sep, tail = rest.rpartition("/_manifests/tags/")
        if sep and head and tail.endswith("/current"):
            return TagLink(RepositoryName.parse(head).value, Tag.parse(tail[: -len("/current")]).value)
    except (DigestInvalid, NameInvalid, TagInvalid):
        return None  # not something Distribution's layout could have written: leave it alone
    return None


# Reading keys back (garbage collection): blob bytes and upload staging.


def blob_of(key: str) -> Digest | None:
    """The digest whose bytes ``key`` holds (``blobs/<algorithm>/<xx>/<hex>/data``), or None."""
    parts = key.split("/")
    if not key.startswith(BLOBS + "/") or len(parts) != 8 or parts[-1] != "data":
        return None
    algorithm, prefix, hex_ = parts[4:7]
    try:
        digest = Digest.parse(f"{algorithm}:{hex_}")
    except DigestInvalid:
        return None
    return digest if hex_.startswith(prefix) else None


@dataclass(frozen=True, slots=True)
class UploadDir:
    repository: str
    upload_id: str
    prefix: str  # the directory to delete


def upload_of(key: str) -> UploadDir | None:
    """The upload staging directory ``key`` lies in (``repositories/<name>/_uploads/<id>/…``), or None."""
    if not key.startswith(REPOSITORIES + "/"):
        return None
    head, sep, tail = key[len(REPOSITORIES) + 1 :].rpartition("/_uploads/")
    upload_id = tail.partition("/")[0]
    if not sep or not head or not upload_id:
        return None
    return UploadDir(head, upload_id, f"{REPOSITORIES}/{head}/_uploads/{upload_id}")

"""layout.py builds exactly CNCF Distribution's v2 keys, and ``classify`` reads them back."""

from __future__ import annotations

import pytest

from trustyard.oci.digest import Digest
from trustyard.oci.names import RepositoryName, Tag
from trustyard.storage import layout

HEX = "ab" + "0123456789abcdef" * 3 + "0123456789abcd"
DIGEST = Digest("sha256", HEX)
NAME = RepositoryName.parse("library/ubuntu")
TAG = Tag.parse("22.04")
REPO = "docker/registry/v2/repositories/library/ubuntu"


def test_hex_fixture_is_a_sha256() -> None:
    assert Digest.parse(f"sha256:{HEX}") == DIGEST


def test_blob_keys() -> None:
    assert layout.blob_data(DIGEST) == f"docker/registry/v2/blobs/sha256/ab/{HEX}/data"
    assert layout.blob_dir(DIGEST) == f"docker/registry/v2/blobs/sha256/ab/{HEX}"


def test_sha512_blob_keys() -> None:
    digest = Digest("sha512", "cd" * 64)
    assert layout.blob_data(digest) == f"docker/registry/v2/blobs/sha512/cd/{'cd' * 64}/data"


def test_repository_keys() -> None:
    assert layout.repository(NAME) == REPO
    assert layout.layer_link(NAME, DIGEST) == f"{REPO}/_layers/sha256/{HEX}/link"
    assert layout.revision_link(NAME, DIGEST) == f"{REPO}/_manifests/revisions/sha256/{HEX}/link"
    assert layout.tag_dir(NAME, TAG) == f"{REPO}/_manifests/tags/22.04"
    assert layout.tag_current_link(NAME, TAG) == f"{REPO}/_manifests/tags/22.04/current/link"
    assert layout.tag_index_link(NAME, TAG, DIGEST) == f"{REPO}/_manifests/tags/22.04/index/sha256/{HEX}/link"


def test_upload_keys() -> None:
    assert layout.upload_dir(NAME, "u-1") == f"{REPO}/_uploads/u-1"
    assert layout.upload_data(NAME, "u-1") == f"{REPO}/_uploads/u-1/data"
    assert layout.upload_started_at(NAME, "u-1") == f"{REPO}/_uploads/u-1/startedat"


def test_link_body_is_the_digest_string_without_newline() -> None:
    assert layout.link_body(DIGEST) == f"sha256:{HEX}".encode()
    assert layout.parse_link(layout.link_body(DIGEST)) == DIGEST
    assert layout.parse_link(f"sha256:{HEX}\n".encode()) == DIGEST  # tolerate a trailing newline


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (layout.layer_link(NAME, DIGEST), layout.LayerLink("library/ubuntu", DIGEST)),
        (layout.revision_link(NAME, DIGEST), layout.RevisionLink("library/ubuntu", DIGEST)),
        (layout.tag_current_link(NAME, TAG), layout.TagLink("library/ubuntu", "22.04")),
        (
            layout.layer_link(RepositoryName.parse("a"), DIGEST),
            layout.LayerLink("a", DIGEST),
        ),
        (
            layout.tag_current_link(RepositoryName.parse("a/b/c"), Tag.parse("current")),
            layout.TagLink("a/b/c", "current"),
        ),
    ],
)
def test_classify_round_trips(key: str, expected: layout.RepositoryKey) -> None:
    assert layout.classify(key) == expected


@pytest.mark.parametrize(
    "key",
    [
        layout.upload_data(NAME, "u-1"),
        layout.upload_started_at(NAME, "u-1"),
        layout.tag_index_link(NAME, TAG, DIGEST),
        layout.blob_data(DIGEST),
        f"{REPO}/_layers/sha256/{HEX}/data",  # not a link
        f"{REPO}/_layers/sha256/nothex/link",
        f"{REPO}/_layers/md5/{HEX}/link",
        f"{REPO}/_layers/{HEX}/link",
        f"{REPO}/_manifests/revisions/sha256/{HEX}/extra/link",
        f"{REPO}/_manifests/tags/22.04/link",
        "docker/registry/v2/repositories/_layers/sha256/" + HEX + "/link",  # no repository name
        "elsewhere/library/ubuntu/_layers/sha256/" + HEX + "/link",
        "docker/registry/v2/repositoriesX/a/_layers/sha256/" + HEX + "/link",
        "",
        "link",
    ],
)
def test_classify_refuses_everything_else(key: str) -> None:
    assert layout.classify(key) is None


@pytest.mark.parametrize("tag", ["x/y", "..", ".hidden", "a" * 129])
def test_classify_refuses_invalid_tags(tag: str) -> None:
    assert layout.classify(f"{REPO}/_manifests/tags/{tag}/current/link") is None


@pytest.mark.parametrize("name", ["Upper/case", "a/../b", "a//b"])
def test_classify_refuses_invalid_repository_names(name: str) -> None:
    assert layout.classify(f"docker/registry/v2/repositories/{name}/_layers/sha256/{HEX}/link") is None


def test_blob_and_upload_keys_read_back() -> None:
    digest = Digest.parse("sha256:" + "ab" * 32)
    assert layout.blob_of(layout.blob_data(digest)) == digest
    assert layout.blob_of(layout.blob_dir(digest) + "/other") is None
    assert layout.blob_of(f"{layout.BLOBS}/sha256/cd/{'ab' * 32}/data") is None  # not under its own prefix
    name = RepositoryName.parse("team/app")
    found = layout.upload_of(layout.upload_data(name, "u-1"))
    assert found == layout.UploadDir("team/app", "u-1", layout.upload_dir(name, "u-1"))
    assert layout.upload_of(layout.layer_link(name, digest)) is None

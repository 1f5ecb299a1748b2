"""Repository names, tags and references: the distribution-spec grammar and Distribution's limits."""

from __future__ import annotations

import pytest

from trustyard.errors import DigestInvalid, NameInvalid, TagInvalid
from trustyard.oci.digest import Digest
from trustyard.oci.names import MAX_NAME_LENGTH, RepositoryName, Tag, parse_reference


@pytest.mark.parametrize(
    "name",
    ["a", "library/ubuntu", "a/b-c/d__e.f", "a0/b--c/d_e", "x" * 255, "/".join(["ab"] * 85), "9/8/7"],
)
def test_valid_names(name: str) -> None:
    assert RepositoryName.parse(name).value == name
    assert str(RepositoryName.parse(name)) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "..",
        "a/../b",
        "a/./b",
        "Upper",
        "a/B",
        "a//b",
        "a/",
        "/a",
        "a b",
        "-a",
        "a-",
        "a.",
        "_a",
        "a___b",
        "a..b",
        "a:b",
        "a@b",
        "x" * 256,
        "/".join(["ab"] * 86),
    ],
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(NameInvalid):
        RepositoryName.parse(name)


def test_name_length_limit_is_distributions() -> None:
    assert MAX_NAME_LENGTH == 255
    with pytest.raises(NameInvalid, match="256 characters"):
        RepositoryName.parse("a" * 256)


def test_namespace() -> None:
    assert RepositoryName.parse("team/app/web").namespace == "team"
    assert RepositoryName.parse("solo").namespace == "solo"


def test_name_refuses_a_trailing_newline() -> None:
    with pytest.raises(NameInvalid):
        RepositoryName.parse("foo\n")


@pytest.mark.parametrize("tag", ["latest", "v1.2.3", "_private", "A-b_C.d", "1", "a" * 128, "x" + "-" * 127])
def test_valid_tags(tag: str) -> None:
    assert Tag.parse(tag).value == tag


@pytest.mark.parametrize("tag", ["", "a" * 129, ".hidden", "-dash", "a/b", "a:b", "a b", "tag@x", "é"])
def test_invalid_tags(tag: str) -> None:
    with pytest.raises(TagInvalid):
        Tag.parse(tag)


def test_tag_refuses_a_trailing_newline() -> None:
    with pytest.raises(TagInvalid):
        Tag.parse("latest\n")


def test_references() -> None:
    hex64 = "0" * 64
    assert parse_reference("latest") == Tag("latest")
    assert parse_reference(f"sha256:{hex64}") == Digest("sha256", hex64)
    with pytest.raises(DigestInvalid):
        parse_reference("sha256:short")
    with pytest.raises(TagInvalid):
        parse_reference(".bad")

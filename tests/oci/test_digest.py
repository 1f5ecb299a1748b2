"""Digest parsing (the spec's grammar, registered algorithms only) and the streaming Hasher."""

from __future__ import annotations

import hashlib

import pytest

from trustyard.errors import DigestInvalid
from trustyard.oci.digest import Digest, Hasher

SHA256 = hashlib.sha256(b"hello").hexdigest()
SHA512 = hashlib.sha512(b"hello").hexdigest()


def test_parse_sha256() -> None:
    digest = Digest.parse(f"sha256:{SHA256}")
    assert (digest.algorithm, digest.hex) == ("sha256", SHA256)
    assert str(digest) == f"sha256:{SHA256}"


def test_parse_sha512() -> None:
    digest = Digest.parse(f"sha512:{SHA512}")
    assert (digest.algorithm, digest.hex) == ("sha512", SHA512)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"sha256:{SHA256.upper()}", "lowercase hex"),
        (f"sha256:{SHA256[:-1]}", "64 lowercase hex"),
        (f"sha256:{SHA256}0", "64 lowercase hex"),
        (f"sha256:{SHA512}", "64 lowercase hex"),
        (f"sha512:{SHA256}", "128 lowercase hex"),
        ("sha256:" + "g" * 64, "lowercase hex"),
        (f"md5:{hashlib.md5(b'hello').hexdigest()}", "unsupported digest algorithm 'md5'"),
        (f"sha384:{hashlib.sha384(b'hello').hexdigest()}", "unsupported digest algorithm"),
        (f"SHA256:{SHA256}", "expected ALGORITHM:HEX"),
        (SHA256, "expected ALGORITHM:HEX"),
        (f"sha256:{SHA256}:x", "expected ALGORITHM:HEX"),
        (f" sha256:{SHA256}", "expected ALGORITHM:HEX"),
        ("sha256:", "expected ALGORITHM:HEX"),
        ("", "expected ALGORITHM:HEX"),
    ],
)
def test_parse_refuses(text: str, message: str) -> None:
    with pytest.raises(DigestInvalid, match=message):
        Digest.parse(text)


def test_parse_refuses_a_trailing_newline() -> None:
    with pytest.raises(DigestInvalid):
        Digest.parse(f"sha256:{SHA256}\n")


def test_error_message_is_bounded() -> None:
    with pytest.raises(DigestInvalid) as info:
        Digest.parse("x" * 10_000)
    assert len(info.value.message) < 400


def test_of_and_ordering() -> None:
    assert Digest.of(b"hello") == Digest("sha256", SHA256)
    assert Digest.of(b"hello", "sha512") == Digest("sha512", SHA512)
    assert sorted([Digest("sha256", "b" * 64), Digest("sha256", "a" * 64)])[0].hex == "a" * 64
    assert len({Digest.parse(f"sha256:{SHA256}"), Digest.of(b"hello")}) == 1


def test_hasher_streams() -> None:
    hasher = Hasher()
    for piece in (b"he", bytearray(b"l"), memoryview(b"lo")):
        hasher.update(piece)
    assert hasher.size == 5
    snapshot = hasher.copy()
    hasher.update(b" world")
    assert snapshot.digest() == Digest("sha256", SHA256)
    assert snapshot.size == 5
    assert hasher.digest() == Digest.of(b"hello world")
    assert hasher.size == 11


def test_hasher_sha512_and_unknown_algorithm() -> None:
    hasher = Hasher("sha512")
    hasher.update(b"hello")
    assert hasher.digest() == Digest("sha512", SHA512)
    with pytest.raises(DigestInvalid, match="unsupported"):
        Hasher("md5")


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
def test_a_saved_state_resumes_where_it_stopped(algorithm: str) -> None:
    data = bytes(range(256)) * 1000
    first = Hasher(algorithm)
    first.update(data[:100_001])
    state = first.state()
    assert state is not None  # libcrypto is on every machine we run on
    resumed = Hasher.resume(algorithm, state, 100_001)
    assert resumed is not None
    resumed.update(data[100_001:])
    assert resumed.size == len(data)
    assert resumed.digest() == Digest.of(data, algorithm)
    first.update(data[100_001:])  # the original is unaffected by the resumed copy
    assert first.digest() == Digest.of(data, algorithm)


def test_a_foreign_state_does_not_resume() -> None:
    assert Hasher.resume("sha256", b"short", 0) is None
    assert Hasher.resume("md5", b"x" * 112, 0) is None

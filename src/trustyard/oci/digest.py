"""Content digests (``algorithm:hex``) and the streaming hasher that computes them once while bytes flow."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from trustyard.errors import DigestInvalid

#: Algorithms a client may name, with the length of their hex encoding.
ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}
CANONICAL = "sha256"

# The spec's grammar: algorithm-component (+ separators) ":" encoded; we accept only registered algorithms.
_DIGEST = re.compile(r"^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$")


@dataclass(frozen=True, slots=True, order=True)
class Digest:
    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        match = _DIGEST.fullmatch(text)
        if match is None:
            raise DigestInvalid(f"invalid digest {text[:200]!r}: expected ALGORITHM:HEX, e.g. sha256:<64 hex>")
        algorithm, encoded = match.groups()
        length = ALGORITHMS.get(algorithm)
        if length is None:
            raise DigestInvalid(f"unsupported digest algorithm {algorithm!r}: use sha256 or sha512")
        if len(encoded) != length or not all(c in "0123456789abcdef" for c in encoded):
            raise DigestInvalid(f"invalid {algorithm} digest: expected {length} lowercase hex characters")
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = CANONICAL) -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


class Hasher:
    """Incremental digest of a byte stream; ``update`` as bytes pass, ``digest()`` at the end."""

    __slots__ = ("_hash", "algorithm", "size")

    def __init__(self, algorithm: str = CANONICAL) -> None:
        if algorithm not in ALGORITHMS:
            raise DigestInvalid(f"unsupported digest algorithm {algorithm!r}: use sha256 or sha512")
        self.algorithm = algorithm
        self._hash = hashlib.new(algorithm)
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._hash.update(data)
        self.size += len(data)

    def digest(self) -> Digest:
        return Digest(self.algorithm, self._hash.hexdigest())

    def copy(self) -> Hasher:
        clone = Hasher.__new__(Hasher)
        clone.algorithm = self.algorithm
        clone._hash = self._hash.copy()
        clone.size = self.size
        return clone

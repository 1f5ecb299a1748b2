"""Content digests (``algorithm:hex``) and the streaming hasher that computes them once while bytes flow."""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import re
from dataclasses import dataclass
from typing import ClassVar

from trustyard.errors import DigestInvalid

#: Algorithms a client may name, with the length of their hex encoding.
ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}
CANONICAL = "sha256"

# The spec's grammar: algorithm-component (+ separators) ":" encoded; we accept only registered algorithms.
_DIGEST = re.compile(r"^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$")
_LOWER_HEX = re.compile(r"[0-9a-f]+")  # one C call: a per-character generator cost ~1.5 µs per digest


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
        if len(encoded) != length or _LOWER_HEX.fullmatch(encoded) is None:
            raise DigestInvalid(f"invalid {algorithm} digest: expected {length} lowercase hex characters")
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = CANONICAL) -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


class Hasher:
    """Incremental digest of a byte stream; ``update`` as bytes pass, ``digest()`` at the end.

    Resumable: ``state()`` captures the running hash so that an upload continued by another worker, another
    node or after a restart goes on hashing where it stopped instead of re-reading every byte (what
    Distribution does with Go's marshalable hashes). hashlib cannot export its state, so the running state
    lives in an OpenSSL context driven through ctypes (the same OpenSSL code hashlib uses); where libcrypto's
    SHA256_*/SHA512_* functions are missing, hashing falls back to hashlib and ``state()`` is None.
    """

    __slots__ = ("_context", "_hash", "algorithm", "size")

    def __init__(self, algorithm: str = CANONICAL) -> None:
        if algorithm not in ALGORITHMS:
            raise DigestInvalid(f"unsupported digest algorithm {algorithm!r}: use sha256 or sha512")
        self.algorithm = algorithm
        self.size = 0
        self._context = _OpenSSL.new(algorithm)
        self._hash = None if self._context is not None else hashlib.new(algorithm)

    @classmethod
    def resume(cls, algorithm: str, state: bytes, size: int) -> Hasher | None:
        """A hasher continuing from ``state()`` taken after ``size`` bytes; None if it cannot be resumed here."""
        context = _OpenSSL.restore(algorithm, state)
        if context is None:
            return None
        hasher = cls.__new__(cls)
        hasher.algorithm, hasher.size, hasher._context, hasher._hash = algorithm, size, context, None
        return hasher

    def update(self, data: bytes | bytearray | memoryview) -> None:
        if self._context is not None:
            self._context.update(data)
        else:
            assert self._hash is not None
            self._hash.update(data)
        self.size += len(data)

    def digest(self) -> Digest:
        if self._context is not None:
            return Digest(self.algorithm, self._context.hexdigest())
        assert self._hash is not None
        return Digest(self.algorithm, self._hash.hexdigest())

    def state(self) -> bytes | None:
        return None if self._context is None else self._context.state()

    def copy(self) -> Hasher:
        clone = Hasher.__new__(Hasher)
        clone.algorithm, clone.size = self.algorithm, self.size
        clone._context = None if self._context is None else _OpenSSL.restore(self.algorithm, self._context.state())
        clone._hash = None if self._hash is None else self._hash.copy()
        return clone


class _OpenSSL:
    """A SHA-256/512 context of libcrypto's low-level API, whose plain-struct state can be saved and restored."""

    _library: ctypes.CDLL | None = None
    _checked = False
    # sizeof(SHA256_CTX) and sizeof(SHA512_CTX) in OpenSSL 1.1 and 3.x; checked against hashlib at first use.
    SIZES: ClassVar[dict[str, tuple[int, int]]] = {"sha256": (112, 32), "sha512": (216, 64)}

    __slots__ = ("_algorithm", "_context", "_update")

    def __init__(self, algorithm: str, context: ctypes.Array[ctypes.c_char]) -> None:
        library = self._library
        assert library is not None
        self._algorithm = algorithm
        self._context = context
        self._update = getattr(library, f"{algorithm.upper()}_Update")

    @classmethod
    def new(cls, algorithm: str) -> _OpenSSL | None:
        library = cls._load()
        if library is None:
            return None
        context = ctypes.create_string_buffer(cls.SIZES[algorithm][0])
        getattr(library, f"{algorithm.upper()}_Init")(context)
        return cls(algorithm, context)

    @classmethod
    def restore(cls, algorithm: str, state: bytes) -> _OpenSSL | None:
        if algorithm not in cls.SIZES or cls._load() is None or len(state) != cls.SIZES[algorithm][0]:
            return None
        return cls(algorithm, ctypes.create_string_buffer(state, len(state)))

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._update(self._context, bytes(data) if not isinstance(data, bytes) else data, len(data))

    def state(self) -> bytes:
        return self._context.raw

    def hexdigest(self) -> str:
        library = self._library
        assert library is not None
        size, length = self.SIZES[self._algorithm]
        scratch = ctypes.create_string_buffer(self._context.raw, size)  # Final consumes the context
        out = ctypes.create_string_buffer(length)
        getattr(library, f"{self._algorithm.upper()}_Final")(out, scratch)
        return out.raw.hex()

    @classmethod
    def _load(cls) -> ctypes.CDLL | None:
        if cls._checked:
            return cls._library
        cls._checked = True
        try:
            name = ctypes.util.find_library("crypto")
            library = ctypes.CDLL(name) if name else None
            if library is not None:
                for algorithm in cls.SIZES:
                    prefix = algorithm.upper()
                    getattr(library, f"{prefix}_Update").argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
                    for suffix in ("Init", "Final"):
                        getattr(library, f"{prefix}_{suffix}")  # raises AttributeError when missing
            cls._library = library
            if library is not None and not cls._agrees_with_hashlib():
                cls._library = None
        except (OSError, AttributeError):
            cls._library = None
        return cls._library

    @classmethod
    def _agrees_with_hashlib(cls) -> bool:
        """Save, restore and finish a context, and compare with hashlib: a layout surprise disables us."""
        sample = bytes(range(256)) * 5
        for algorithm in cls.SIZES:
            first = cls.new(algorithm)
            assert first is not None
            first.update(sample[:700])
            resumed = cls.restore(algorithm, first.state())
            if resumed is None:
                return False
            resumed.update(sample[700:])
            if resumed.hexdigest() != hashlib.new(algorithm, sample).hexdigest():
                return False
        return True

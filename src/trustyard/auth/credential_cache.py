"""Recently verified credentials, per worker: HTTP Basic on ``/v2/`` pays for an argon2 verification once per
``ttl``, not on every request.

Entries are keyed by an HMAC-SHA256 of the ``Authorization`` value under a random key of this process, so
neither the password nor a fast unsalted hash of it stays in memory. An entry lives ``ttl`` seconds at most:
that is how long a password change, a revoked app token or a changed grant can take to reach a worker.
Only successes are kept (failures go through the login rate limit every time); the least recently used
entry goes first when the cache is full.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

Value = TypeVar("Value")

#: Long enough that a busy client verifies its password a few times a minute, short enough that revoking
#: credentials takes effect soon; ``basic_auth_cache_ttl`` in the configuration.
DEFAULT_TTL = 30
DEFAULT_SIZE = 1024


class CredentialCache(Generic[Value]):
    """A bounded map from credentials to what verifying them gave, each entry living ``ttl`` seconds."""

    def __init__(self, ttl: float, size: int, clock: Callable[[], float]) -> None:
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._secret = secrets.token_bytes(32)
        self._entries: OrderedDict[bytes, tuple[float, Value]] = OrderedDict()

    def key(self, credentials: str) -> bytes:
        return hmac.digest(self._secret, credentials.encode(), hashlib.sha256)

    def get(self, key: bytes) -> Value | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if self._clock() >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: bytes, value: Value) -> None:
        if self._ttl <= 0:
            return
        self._entries[key] = (self._clock() + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

"""Password checks for logins and password changes: argon2 off the event loop, one at a time per worker, and
recent successes remembered.

An argon2id check costs ~0.2 CPU-s and 64 MiB by design (``auth/passwords.py``). Called on the event loop, one
login stalled every other request of its worker for ~0.3 s, and every ``docker pull`` or ``skopeo copy`` with
stored credentials logs in at the token endpoint first. So a check runs in a thread (argon2-cffi releases the
GIL, and its lanes are threads of their own, so one check already uses every core), and at most one runs per
worker: a burst of logins queues instead of holding 64 MiB each.

The queue is bounded (``waiting``): password guesses spread over many addresses get past the per-address
login limit (``services/lockout.py``), and an unbounded queue would make every password login of the worker
wait behind all of them until clients time out, each holding a connection. Past the bound a check is refused
at once with 429 and Retry-After; app tokens are never checked here, so CI keeps pulling.

A success is remembered for ``ttl`` seconds (``basic_auth_cache_ttl``), keyed by an HMAC of the stored hash
and the password under a random key of the process (``auth/credential_cache.py``), so a client that logs in
before every pull pays for argon2 once in a while. The stored hash is part of the key, so a password change
takes effect at once: the new hash matches no entry. Whether the account is active is read from its row on
every login, never from here. Failures are never remembered: each one costs a full check and counts towards
the login limit (``services/lockout.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from trustyard.auth import passwords
from trustyard.auth.credential_cache import CredentialCache
from trustyard.errors import TooManyRequests

T = TypeVar("T")
BUSY = "too many password checks are waiting on this server; try again in a second, or log in with an app token"


class PasswordChecks:
    """argon2 hashing and verification for the services, off the event loop and bounded per worker."""

    def __init__(self, remembered: CredentialCache[bool], concurrency: int, waiting: int) -> None:
        """At most ``concurrency`` checks run at once and ``waiting`` more wait their turn."""
        self._remembered = remembered
        self._slots = asyncio.Semaphore(concurrency)
        self._room = concurrency + waiting
        self._admitted = 0
        self._checking: dict[bytes, asyncio.Task[bool]] = {}

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when ``password`` matches ``stored_hash``; a missing hash (unknown user) still costs one check,
        so response times do not tell which user names exist."""
        if stored_hash is None:
            self._admit()
            return await self._run(passwords.verify_password, stored_hash, password)
        key = self._remembered.key(f"{stored_hash}\0{password}")
        if self._remembered.get(key):
            return True
        # One check per credentials at a time: of a burst of logins with the same ones (a CI farm's robot
        # account starting fifty jobs) the first pays for argon2 and takes one place in the queue, and the rest
        # wait for its answer. A task of its own, so that a client hanging up cancels only its own wait.
        check = self._checking.get(key)
        if check is None:
            self._admit()
            check = self._checking[key] = asyncio.create_task(self._verify(key, stored_hash, password))
            check.add_done_callback(lambda _: self._checking.pop(key, None))
        return await asyncio.shield(check)

    async def hash(self, password: str) -> str:
        """The argon2id hash to store for a new password."""
        self._admit()
        return await self._run(passwords.hash_password, password)

    async def _verify(self, key: bytes, stored_hash: str, password: str) -> bool:
        ok = await self._run(passwords.verify_password, stored_hash, password)
        if ok:
            self._remembered.put(key, True)
        return ok

    def _admit(self) -> None:
        """A place in the queue, or 429 when it is full."""
        if self._admitted >= self._room:
            raise TooManyRequests(BUSY, retry_after=1)
        self._admitted += 1

    async def _run(self, check: Callable[..., T], *args: Any) -> T:
        """An admitted check, in a thread once a slot is free; its place is given back when it ends."""
        try:
            async with self._slots:
                return await asyncio.to_thread(check, *args)
        finally:
            self._admitted -= 1

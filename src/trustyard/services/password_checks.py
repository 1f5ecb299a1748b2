"""Password checks for logins and password changes: argon2 off the event loop, one at a time per worker, and
recent successes remembered.

An argon2id check costs ~0.2 CPU-s and 64 MiB by design (``auth/passwords.py``). Called on the event loop, one
login stalled every other request of its worker for ~0.3 s, and every ``docker pull`` or ``skopeo copy`` with
stored credentials logs in at the token endpoint first. So a check runs in a thread (argon2-cffi releases the
GIL, and its lanes are threads of their own, so one check already uses every core), and at most one runs per
worker: a burst of logins queues instead of holding 64 MiB each.

A success is remembered for ``ttl`` seconds (``basic_auth_cache_ttl``), keyed by an HMAC of the stored hash
and the password under a random key of the process (``auth/credential_cache.py``), so a client that logs in
before every pull pays for argon2 once in a while. The stored hash is part of the key, so a password change
takes effect at once: the new hash matches no entry. Whether the account is active is read from its row on
every login, never from here. Failures are never remembered: each one costs a full check and counts towards
the login limit (``services/lockout.py``).
"""

from __future__ import annotations

import asyncio

from trustyard.auth import passwords
from trustyard.auth.credential_cache import CredentialCache


class PasswordChecks:
    """argon2 hashing and verification for the services, off the event loop and bounded per worker."""

    def __init__(self, remembered: CredentialCache[bool], concurrency: int) -> None:
        self._remembered = remembered
        self._slots = asyncio.Semaphore(concurrency)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when ``password`` matches ``stored_hash``; a missing hash (unknown user) still costs one check,
        so response times do not tell which user names exist."""
        key = None if stored_hash is None else self._remembered.key(f"{stored_hash}\0{password}")
        if key is not None and self._remembered.get(key):
            return True
        async with self._slots:
            # Asked again once it is this check's turn: of a burst of logins with the same credentials (a CI
            # farm's robot account starting fifty jobs), the first pays for argon2 and the rest wait for it.
            if key is not None and self._remembered.get(key):
                return True
            ok = await asyncio.to_thread(passwords.verify_password, stored_hash, password)
            if ok and key is not None:
                self._remembered.put(key, True)
        return ok

    async def hash(self, password: str) -> str:
        """The argon2id hash to store for a new password."""
        async with self._slots:
            return await asyncio.to_thread(passwords.hash_password, password)

"""Secrets at rest: argon2id password hashes, and app tokens (random, shown once, stored as SHA-256).

App tokens carry 256 random bits, so a fast hash is as safe as a slow one and keeps ``docker login`` with a
token cheap; passwords are chosen by people, so they get argon2id (``argon2-cffi``'s RFC 9106 defaults).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

#: Replaced by a cheaper hasher in the test suite only (tests/conftest.py); never configurable at run time.
HASHER = PasswordHasher()
TOKEN_PREFIX = "tyt_"
MIN_PASSWORD_LENGTH = 12

# Verifying against this hash when a user does not exist costs the same time as a real check, so response
# times do not tell which user names exist.
_DUMMY_HASH: str | None = None


def generate_password() -> str:
    """A password for a person to copy once: 24 URL-safe characters (~143 bits)."""
    return secrets.token_urlsafe(18)


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; a missing hash (unknown user) still costs one verification."""
    global _DUMMY_HASH
    if stored_hash is None:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = HASHER.hash(secrets.token_urlsafe(16))
        stored_hash = _DUMMY_HASH
        password = "\0" + password  # can never match
    try:
        return HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_stamp(stored_hash: str) -> str:
    """A short fingerprint of a password hash: refresh tokens carry it, so a password change revokes them."""
    return hashlib.sha256(stored_hash.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class NewAppToken:
    id: str  # public, names the row
    secret: str  # the whole token the user copies: tyt_<id>_<random>
    secret_hash: str


def new_app_token() -> NewAppToken:
    token_id = secrets.token_hex(6)
    secret = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    return NewAppToken(token_id, secret, hash_token(secret))


def app_token_id(secret: str) -> str | None:
    """The id inside an app token, or None when ``secret`` does not look like one (then it is a password)."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token_id, sep, rest = secret[len(TOKEN_PREFIX) :].partition("_")
    if not sep or not rest or len(token_id) != 12:
        return None
    return token_id


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_matches(stored_hash: str, secret: str) -> bool:
    return hmac.compare_digest(stored_hash, hash_token(secret))

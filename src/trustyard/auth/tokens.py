"""Registry tokens: the only module that knows the JWT format (ES256, ``kid``, the Docker ``access`` claim).

Access tokens are short-lived and carry the granted scopes, so verifying one needs only the public key: no
database query on the hot path. Refresh tokens (the OAuth2 form docker and containerd use) are JWTs with an
audience of their own, so one can never pass for the other; they name the user, the app token they came
from and a stamp of the password hash, which the token endpoint checks against the database when they are
used, so revoking an app token or changing a password revokes them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from trustyard.auth.scopes import Scope

ALGORITHM = "ES256"
REFRESH_SUFFIX = ":refresh"
LEEWAY = 30  # seconds of clock skew tolerated between nodes


class TokenInvalid(Exception):
    """A token that is malformed, forged, expired or meant for something else (the reason is for logs)."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    private: ec.EllipticCurvePrivateKey
    kid: str

    @property
    def jwk(self) -> dict[str, str]:
        numbers = self.private.public_key().public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64(numbers.x.to_bytes(32, "big")),
            "y": _b64(numbers.y.to_bytes(32, "big")),
            "kid": self.kid,
            "use": "sig",
            "alg": ALGORITHM,
        }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _thumbprint(key: ec.EllipticCurvePrivateKey) -> str:
    """RFC 7638 JWK thumbprint: a ``kid`` derived from the key, the same on every node that shares it."""
    numbers = key.public_key().public_numbers()
    members = {
        "crv": "P-256",
        "kty": "EC",
        "x": _b64(numbers.x.to_bytes(32, "big")),
        "y": _b64(numbers.y.to_bytes(32, "big")),
    }
    return _b64(hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest())


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 from the start (never briefly readable), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def new_signing_key_pem() -> bytes:
    """A fresh EC P-256 private key as unencrypted PKCS#8 PEM (sealed before it is stored anywhere shared)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def ensure_signing_key(path: Path) -> None:
    """Create the token signing key at ``path`` unless it exists (an operator's ``token_key`` file)."""
    if path.exists():
        return
    write_private(path, new_signing_key_pem())


def load_signing_key(path: Path) -> SigningKey:
    return signing_key_from_pem(path.read_bytes(), str(path))


def signing_key_from_pem(pem: bytes, source: str) -> SigningKey:
    """The signing key in ``pem``; ``source`` names where it came from in the error."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except ValueError:
        raise ValueError(f"{source}: not a PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError(f"{source}: the token signing key must be an EC P-256 private key (ES256)")
    return SigningKey(key, _thumbprint(key))


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified access token says: who, and which actions on which resources."""

    subject: str  # "" for an anonymous token
    access: dict[tuple[str, str], frozenset[str]]
    expires_at: float

    def allows(self, kind: str, name: str, action: str) -> bool:
        actions = self.access.get((kind, name))
        return actions is not None and (action in actions or "*" in actions)


@dataclass(frozen=True, slots=True)
class RefreshClaims:
    subject: str
    app_token: str | None
    password_stamp: str | None


class TokenAuthority:
    """Signs and verifies access and refresh tokens for one service name with one key."""

    def __init__(self, key: SigningKey, service: str, issuer: str, access_ttl: int, refresh_ttl: int) -> None:
        self.key = key
        self.service = service
        self.issuer = issuer
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self._public = key.private.public_key()
        self._verified: OrderedDict[str, Claims] = OrderedDict()  # recent tokens: skip the signature check

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.jwk]}

    def issue_access(self, subject: str, scopes: list[Scope], now: float | None = None) -> tuple[str, int]:
        """A signed access token and its issue time."""
        issued = int(now if now is not None else time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "iat": issued,
            "nbf": issued - LEEWAY,
            "exp": issued + self.access_ttl,
            "jti": secrets.token_hex(12),
            "access": [s.as_claim() for s in scopes],
        }
        return self._sign(claims), issued

    def issue_refresh(self, subject: str, app_token: str | None, password_stamp: str | None) -> str:
        issued = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service + REFRESH_SUFFIX,
            "iat": issued,
            "exp": issued + self.refresh_ttl,
            "jti": secrets.token_hex(12),
            "tok": app_token,
            "pws": password_stamp,
        }
        return self._sign(claims)

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.key.private, algorithm=ALGORITHM, headers={"kid": self.key.kid, "typ": "JWT"})

    def verify_access(self, token: str) -> Claims:
        cached = self._verified.get(token)
        if cached is not None:
            if cached.expires_at + LEEWAY > time.time():
                return cached
            del self._verified[token]
        payload = self._decode(token, self.service)
        access: dict[tuple[str, str], frozenset[str]] = {}
        entries = payload.get("access") or []
        if not isinstance(entries, list):
            raise TokenInvalid("access claim is not a list")
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("actions"), list):
                raise TokenInvalid("malformed access entry")
            key = (str(entry.get("type")), str(entry.get("name")))
            access[key] = access.get(key, frozenset()) | frozenset(str(a) for a in entry["actions"])
        claims = Claims(str(payload.get("sub") or ""), access, float(payload["exp"]))
        self._verified[token] = claims
        while len(self._verified) > 4096:
            self._verified.popitem(last=False)
        return claims

    def verify_refresh(self, token: str) -> RefreshClaims:
        payload = self._decode(token, self.service + REFRESH_SUFFIX)
        subject = payload.get("sub")
        if not isinstance(subject, str) or not subject:
            raise TokenInvalid("refresh token without a subject")
        return RefreshClaims(subject, payload.get("tok"), payload.get("pws"))

    def _decode(self, token: str, audience: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("kid") != self.key.kid:
                raise TokenInvalid("unknown key id")
            payload: dict[str, Any] = jwt.decode(
                token,
                self._public,
                algorithms=[ALGORITHM],  # never "none", never a key the caller chose
                audience=audience,
                issuer=self.issuer,
                leeway=LEEWAY,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise TokenInvalid(str(exc)) from None
        return payload


def ephemeral_authority(service: str = "trustyard") -> TokenAuthority:
    """An authority with a fresh in-memory key (tests and one-off commands: its tokens die with it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return TokenAuthority(SigningKey(key, _thumbprint(key)), service, service, 300, 86400)

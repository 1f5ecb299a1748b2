"""Token signing and verification: good tokens verify from the key alone; forged ones never do."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import jwt
import pytest

from trustyard.auth.scopes import Scope
from trustyard.auth.tokens import (
    TokenAuthority,
    TokenInvalid,
    ensure_signing_key,
    ephemeral_authority,
    load_signing_key,
)

PULL = [Scope("repository", "team/app", frozenset({"pull"}))]


@pytest.fixture
def authority() -> TokenAuthority:
    return ephemeral_authority()


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_token_carries_its_access(authority: TokenAuthority) -> None:
    token, _ = authority.issue_access("alice", PULL)
    claims = authority.verify_access(token)
    assert claims.subject == "alice"
    assert claims.allows("repository", "team/app", "pull")
    assert not claims.allows("repository", "team/app", "push")
    assert not claims.allows("repository", "team/other", "pull")
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256"
    assert header["kid"] == authority.key.kid
    assert authority.jwks["keys"][0]["kid"] == authority.key.kid


def test_the_key_file_is_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "token.pem"
    ensure_signing_key(path)
    first = load_signing_key(path)
    ensure_signing_key(path)
    assert load_signing_key(path).kid == first.kid
    assert path.stat().st_mode & 0o777 == 0o600


def test_alg_none_is_refused(authority: TokenAuthority) -> None:
    token, _ = authority.issue_access("alice", PULL)
    payload = jwt.decode(token, options={"verify_signature": False})
    payload["access"] = [{"type": "repository", "name": "team/app", "actions": ["push", "delete"]}]
    forged = f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': authority.key.kid})}.{_b64(payload)}."
    with pytest.raises(TokenInvalid):
        authority.verify_access(forged)


def test_a_changed_payload_breaks_the_signature(authority: TokenAuthority) -> None:
    token, _ = authority.issue_access("alice", PULL)
    header, _, signature = token.split(".")
    payload = jwt.decode(token, options={"verify_signature": False})
    payload["access"][0]["actions"] = ["pull", "push"]
    with pytest.raises(TokenInvalid):
        authority.verify_access(f"{header}.{_b64(payload)}.{signature}")


def test_another_key_is_refused_even_with_our_kid(authority: TokenAuthority) -> None:
    other = ephemeral_authority()
    forged = jwt.encode(
        jwt.decode(authority.issue_access("alice", PULL)[0], options={"verify_signature": False}),
        other.key.private,
        algorithm="ES256",
        headers={"kid": authority.key.kid},
    )
    with pytest.raises(TokenInvalid):
        authority.verify_access(forged)
    with pytest.raises(TokenInvalid):
        authority.verify_access(other.issue_access("alice", PULL)[0])


def test_hs256_with_the_public_key_as_secret_is_refused(authority: TokenAuthority) -> None:
    from cryptography.hazmat.primitives import serialization

    public = authority.key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    payload = jwt.decode(authority.issue_access("alice", PULL)[0], options={"verify_signature": False})
    header = {"alg": "HS256", "typ": "JWT", "kid": authority.key.kid}
    import hashlib
    import hmac

    signing_input = f"{_b64(header)}.{_b64(payload)}"
    mac = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(TokenInvalid):
        authority.verify_access(forged)


def test_other_service_issuer_or_audience_is_refused(authority: TokenAuthority) -> None:
    elsewhere = TokenAuthority(authority.key, "other-registry", "trustyard", 300, 3600)
    with pytest.raises(TokenInvalid):
        authority.verify_access(elsewhere.issue_access("alice", PULL)[0])
    other_issuer = TokenAuthority(authority.key, "trustyard", "someone-else", 300, 3600)
    with pytest.raises(TokenInvalid):
        authority.verify_access(other_issuer.issue_access("alice", PULL)[0])


def test_expired_tokens_are_refused(authority: TokenAuthority) -> None:
    token, _ = authority.issue_access("alice", PULL, now=time.time() - 3600)
    with pytest.raises(TokenInvalid):
        authority.verify_access(token)


def test_refresh_and_access_tokens_are_not_interchangeable(authority: TokenAuthority) -> None:
    refresh = authority.issue_refresh("alice", None, "stamp")
    with pytest.raises(TokenInvalid):
        authority.verify_access(refresh)
    access, _ = authority.issue_access("alice", PULL)
    with pytest.raises(TokenInvalid):
        authority.verify_refresh(access)
    assert authority.verify_refresh(refresh).password_stamp == "stamp"


@pytest.mark.parametrize("junk", ["", "abc", "a.b.c", "Bearer x", "e30.e30.e30"])
def test_junk_is_refused(authority: TokenAuthority, junk: str) -> None:
    with pytest.raises(TokenInvalid):
        authority.verify_access(junk)

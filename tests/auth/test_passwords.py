"""Password hashes and app tokens."""

from __future__ import annotations

from trustyard.auth import passwords


def test_password_hash_round_trip() -> None:
    hashed = passwords.hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert passwords.verify_password(hashed, "correct horse battery")
    assert not passwords.verify_password(hashed, "wrong")
    assert not passwords.verify_password(None, "anything")
    assert not passwords.verify_password("not a hash", "x")


def test_app_tokens() -> None:
    token = passwords.new_app_token()
    assert passwords.app_token_id(token.secret) == token.id
    assert passwords.token_matches(token.secret_hash, token.secret)
    assert not passwords.token_matches(token.secret_hash, token.secret + "x")
    assert token.secret not in token.secret_hash
    assert passwords.app_token_id("a password") is None
    assert passwords.app_token_id("tyt_short_x") is None

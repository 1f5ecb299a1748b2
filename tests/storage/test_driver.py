"""The contract's shared helpers that every backend leans on: here, ``redact``."""

from __future__ import annotations

import pytest

from trustyard.storage.driver import redact


def test_a_long_secret_is_redacted_wherever_it_appears() -> None:
    secret = "s3cr3t-Key-0123456789"
    text = f"auth failed for key {secret}; url=https://u:{secret}@host/x?sig={secret}abc"
    assert redact(text, [secret]) == (
        "auth failed for key [redacted]; url=https://u:[redacted]@host/x?sig=[redacted]abc"
    )


@pytest.mark.parametrize("secret", ["o", "ab", "pa$$", "1234567"])
def test_a_short_secret_is_redacted_where_it_stands_alone_and_the_words_around_it_survive(secret: str) -> None:
    text = f"Could not connect to the endpoint: password={secret}; echoed '{secret}' and ({secret})"
    redacted = redact(text, [secret])
    assert redacted == "Could not connect to the endpoint: password=[redacted]; echoed '[redacted]' and ([redacted])"


def test_a_secret_inside_another_is_redacted_after_it() -> None:
    # The longer one first: replacing "token" first would leave "[redacted]-extra-long" of the longer secret.
    assert redact("a token-extra-long and a token", ["token", "token-extra-long"]) == "a [redacted] and a [redacted]"


def test_empty_secrets_and_a_message_without_any_are_left_alone() -> None:
    assert redact("NoSuchBucket: The specified bucket does not exist", ["", "zz"]) == (
        "NoSuchBucket: The specified bucket does not exist"
    )

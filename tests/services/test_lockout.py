"""The slowdown of password guessing: free mistakes, then a doubling delay with a ceiling."""

from __future__ import annotations

from trustyard.services.lockout import PER_ACCOUNT_AND_ADDRESS, Backoff


def test_backoff_doubles_up_to_its_ceiling() -> None:
    backoff = Backoff(free=3, base=1.0, cap=10.0)
    assert [backoff.delay(n) for n in range(8)] == [0.0, 0.0, 0.0, 1.0, 2.0, 4.0, 8.0, 10.0]


def test_the_owner_never_waits_long() -> None:
    assert PER_ACCOUNT_AND_ADDRESS.delay(1000) <= 300

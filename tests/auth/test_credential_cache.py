"""The per-worker cache of verified Basic credentials: expiry after the TTL, bounded size, keys that are not
the credentials."""

from __future__ import annotations

from trustyard.auth.credential_cache import CredentialCache


class Clock:
    """A clock the test moves by hand, so nothing sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_lives_until_its_ttl_ends() -> None:
    clock = Clock()
    cache: CredentialCache[str] = CredentialCache(ttl=30, size=10, clock=clock)
    key = cache.key("Basic YWxpY2U6c2VjcmV0")
    cache.put(key, "alice")
    clock.now += 29.9
    assert cache.get(key) == "alice"
    clock.now += 0.1
    assert cache.get(key) is None  # a revoked token or changed password is checked again from here on
    clock.now += 1
    assert cache.get(key) is None


def test_a_ttl_of_zero_keeps_nothing() -> None:
    cache: CredentialCache[str] = CredentialCache(ttl=0, size=10, clock=Clock())
    key = cache.key("Basic YWxpY2U6c2VjcmV0")
    cache.put(key, "alice")
    assert cache.get(key) is None


def test_the_least_recently_used_entry_goes_when_full() -> None:
    cache: CredentialCache[int] = CredentialCache(ttl=30, size=2, clock=Clock())
    keys = [cache.key(f"Basic {n}") for n in range(3)]
    cache.put(keys[0], 0)
    cache.put(keys[1], 1)
    assert cache.get(keys[0]) == 0  # used: now the most recent
    cache.put(keys[2], 2)
    assert [cache.get(k) for k in keys] == [0, None, 2]


def test_keys_are_keyed_hashes_not_the_credentials() -> None:
    one: CredentialCache[str] = CredentialCache(ttl=30, size=10, clock=Clock())
    other: CredentialCache[str] = CredentialCache(ttl=30, size=10, clock=Clock())
    credentials = "Basic YWxpY2U6c2VjcmV0"
    assert one.key(credentials) == one.key(credentials)
    assert credentials.encode() not in one.key(credentials)
    assert one.key(credentials) != other.key(credentials)  # a random key per process
    assert one.key(credentials) != one.key(credentials + "x")

"""Password checks: argon2 runs beside the event loop, one at a time, and only successes are remembered."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher

from trustyard.auth import passwords
from trustyard.auth.credential_cache import CredentialCache
from trustyard.errors import TooManyRequests
from trustyard.services.password_checks import PasswordChecks

PASSWORD = "a-long-enough-password"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Counted:
    """Wraps ``passwords.verify_password``: how many checks ran, and how many at most at once."""

    def __init__(self) -> None:
        self.calls = 0
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()
        self._verify = passwords.verify_password

    def __call__(self, stored_hash: str | None, password: str) -> bool:
        with self._lock:
            self.calls += 1
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            return self._verify(stored_hash, password)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Counted:
    wrapper = Counted()
    monkeypatch.setattr(passwords, "verify_password", wrapper)
    return wrapper


def checks(ttl: float = 30, clock: Clock | None = None, concurrency: int = 1, waiting: int = 16) -> PasswordChecks:
    return PasswordChecks(CredentialCache(ttl, 16, clock or Clock()), concurrency, waiting)


class Gated(Counted):
    """``Counted``, and every check waits until ``gate`` opens: checks pile up as under a flood of logins."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def __call__(self, stored_hash: str | None, password: str) -> bool:
        assert self.gate.wait(10), "the test never opened the gate"
        return super().__call__(stored_hash, password)


@pytest.fixture
def gated(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gated]:
    wrapper = Gated()
    monkeypatch.setattr(passwords, "verify_password", wrapper)
    yield wrapper
    wrapper.gate.set()  # a failing test must not leave a thread waiting


async def test_the_event_loop_runs_on_while_argon2_works(monkeypatch: pytest.MonkeyPatch) -> None:
    # The suite's hasher is cheap (tests/conftest.py); this one costs tens of milliseconds, as a real one does.
    monkeypatch.setattr(passwords, "HASHER", PasswordHasher(time_cost=4, memory_cost=32768, parallelism=1))
    stored = passwords.hash_password(PASSWORD)
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            await asyncio.sleep(0.001)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    assert await checks(ttl=0).verify(stored, PASSWORD)
    done.set()
    await ticking
    assert ticks >= 5, "the check held the event loop: nothing else ran while argon2 worked"


async def test_a_success_is_remembered_for_ttl_seconds(counted: Counted) -> None:
    clock = Clock()
    checked = checks(ttl=30, clock=clock)
    stored = passwords.hash_password(PASSWORD)
    assert await checked.verify(stored, PASSWORD)
    assert await checked.verify(stored, PASSWORD)
    assert counted.calls == 1
    clock.now = 30
    assert await checked.verify(stored, PASSWORD)
    assert counted.calls == 2


async def test_failures_are_checked_every_time(counted: Counted) -> None:
    checked = checks()
    stored = passwords.hash_password(PASSWORD)
    for _ in range(3):
        assert not await checked.verify(stored, "not-the-password")
        assert not await checked.verify(None, PASSWORD)  # an unknown user costs a check too
    assert counted.calls == 6


async def test_a_new_hash_matches_no_remembered_password(counted: Counted) -> None:
    """The stored hash is part of the key: after a password change (or the same password set again, with a new
    salt), the next login is checked against the new hash."""
    checked = checks()
    old, new = passwords.hash_password(PASSWORD), passwords.hash_password(PASSWORD)
    assert await checked.verify(old, PASSWORD)
    assert await checked.verify(new, PASSWORD)
    assert counted.calls == 2


async def test_ttl_zero_remembers_nothing(counted: Counted) -> None:
    checked = checks(ttl=0)
    stored = passwords.hash_password(PASSWORD)
    assert await checked.verify(stored, PASSWORD)
    assert await checked.verify(stored, PASSWORD)
    assert counted.calls == 2


async def test_a_burst_of_the_same_login_costs_one_check(counted: Counted) -> None:
    checked = checks()
    stored = passwords.hash_password(PASSWORD)
    assert await asyncio.gather(*(checked.verify(stored, PASSWORD) for _ in range(8))) == [True] * 8
    assert counted.calls == 1


async def test_one_check_at_a_time(counted: Counted, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "HASHER", PasswordHasher(time_cost=2, memory_cost=8192, parallelism=1))
    checked = checks(ttl=0, concurrency=1)
    logins = [(passwords.hash_password(f"{PASSWORD}-{n}"), f"{PASSWORD}-{n}") for n in range(4)]
    results = await asyncio.gather(*(checked.verify(stored, password) for stored, password in logins))
    assert results == [True] * 4
    assert counted.calls == 4
    assert counted.most == 1


async def test_a_full_queue_refuses_at_once_and_frees_its_places(gated: Gated) -> None:
    """One check running and two waiting fill a queue of two: a fourth distinct login is refused (429, retry in
    a second) without waiting, a login with the same credentials as one queued joins it, and once the
    checks end there is room again."""
    checked = checks(concurrency=1, waiting=2)
    logins = [(passwords.hash_password(f"{PASSWORD}-{n}"), f"{PASSWORD}-{n}") for n in range(4)]
    queued = [asyncio.create_task(checked.verify(stored, password)) for stored, password in logins[:3]]
    await asyncio.sleep(0)  # each task runs up to its wait: admitted, and the first check started
    with pytest.raises(TooManyRequests) as refused:
        await checked.verify(*logins[3])
    assert refused.value.retry_after == 1
    with pytest.raises(TooManyRequests):
        await checked.hash(PASSWORD)  # a password change waits in the same queue
    with pytest.raises(TooManyRequests):
        await checked.verify(None, PASSWORD)  # and so does a login of an unknown user
    joined = asyncio.create_task(checked.verify(*logins[2]))
    gated.gate.set()
    assert await asyncio.gather(*queued, joined) == [True] * 4
    assert gated.calls == 3
    assert await checked.verify(*logins[3])


async def test_a_client_hanging_up_does_not_cancel_the_check_others_wait_for(gated: Gated) -> None:
    checked = checks(waiting=0)
    stored = passwords.hash_password(PASSWORD)
    first = asyncio.create_task(checked.verify(stored, PASSWORD))
    second = asyncio.create_task(checked.verify(stored, PASSWORD))
    await asyncio.sleep(0.01)
    first.cancel()
    gated.gate.set()
    assert await second
    assert first.cancelled()
    assert gated.calls == 1
    other = passwords.hash_password(PASSWORD + "-other")
    assert await checked.verify(other, PASSWORD + "-other"), "the check gave its place back when it ended"


async def test_hash_gives_a_hash_that_verifies() -> None:
    checked = checks()
    stored = await checked.hash(PASSWORD)
    assert stored.startswith("$argon2id$")
    assert await checked.verify(stored, PASSWORD)
    assert not await checked.verify(stored, PASSWORD + "x")

"""Slowing down password guessing without letting anyone lock an account out.

Failures are counted per (account, client address) in the audit log (so the count holds across workers and
nodes): a few are free, then each further attempt from that address must wait twice as long as the last,
up to ``MAX_DELAY``. Someone guessing from one address slows only themselves; the account's owner, from
their own address, is never held up. A per-address budget across all accounts slows password spraying.
App tokens are never checked here: 256 random bits cannot be guessed, so CI keeps working during an attack.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from trustyard.errors import TooManyRequests
from trustyard.services.audit import Audit

#: Failures older than this no longer count.
WINDOW = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Backoff:
    """``free`` failures, then a delay of ``base`` seconds doubling with each further one, at most ``cap``."""

    free: int
    base: float
    cap: float

    def delay(self, failures: int) -> float:
        if failures < self.free:
            return 0.0
        return float(min(self.base * 2 ** (failures - self.free), self.cap))


PER_ACCOUNT_AND_ADDRESS = Backoff(free=5, base=1.0, cap=300.0)
PER_ADDRESS = Backoff(free=50, base=1.0, cap=300.0)


class Lockout:
    def __init__(self, audit: Audit) -> None:
        self._audit = audit

    async def check(self, username: str, source: str | None) -> None:
        """TooManyRequests (with the seconds to wait) while ``source`` must wait before trying ``username``."""
        now = datetime.now(UTC)
        since = now - WINDOW
        waits = [await self._wait(username, source, since, now, PER_ACCOUNT_AND_ADDRESS)]
        if source is not None:
            waits.append(await self._wait(None, source, since, now, PER_ADDRESS))
        wait = max(waits)
        if wait > 0:
            seconds = math.ceil(wait)
            raise TooManyRequests(
                f"too many failed logins from this address; try again in {seconds} s", retry_after=seconds
            )

    async def _wait(
        self, username: str | None, source: str | None, since: datetime, now: datetime, backoff: Backoff
    ) -> float:
        failures, latest = await self._audit.failures(username, source, since)
        if latest is None:
            return 0.0
        return max(0.0, (latest + timedelta(seconds=backoff.delay(failures)) - now).total_seconds())

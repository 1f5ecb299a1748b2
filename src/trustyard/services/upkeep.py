"""``Upkeep``: the registry's hourly housekeeping, once per cluster: cancel upload sessions clients abandoned
(Distribution's uploadpurging) and prune delivered events from the webhook delivery log.

Every worker of every node calls ``run_if_due`` now and then; the ``upkeep`` lease in SQL decides who runs it.
The winner keeps the lease for the whole interval instead of releasing it, so nobody else (itself included)
takes it again until the interval is over: one run per interval however many workers and nodes there are.
A run that fails is retried at the next interval (both jobs are idempotent and only ever catch up).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from trustyard.db.leases import LeaseStore
from trustyard.services.actor import Actor
from trustyard.services.uploads import Uploads
from trustyard.services.webhooks import Webhooks

LEASE = "upkeep"
#: How often upkeep runs across the cluster.
INTERVAL = timedelta(hours=1)
#: Upload sessions idle this long are cancelled (Distribution's uploadpurging default age).
UPLOAD_PURGE_AGE = timedelta(days=7)
#: Delivered webhook events stay in the delivery log this long.
WEBHOOK_LOG_AGE = timedelta(days=7)
log = logging.getLogger(__name__)


class Upkeep:
    def __init__(self, leases: LeaseStore, uploads: Uploads, webhooks: Webhooks, holder: str) -> None:
        self._leases = leases
        self._uploads = uploads
        self._webhooks = webhooks
        self._holder = holder

    async def run_if_due(self) -> bool:
        """Run upkeep when no worker of any node ran it within ``INTERVAL``; whether this call ran it."""
        if not await self._leases.take_if_free(LEASE, self._holder, INTERVAL):
            return False
        purged = await self._uploads.purge(Actor.system(), UPLOAD_PURGE_AGE)
        pruned = await self._webhooks.prune(Actor.system(), WEBHOOK_LOG_AGE)
        if purged or pruned:
            log.info(
                "upkeep: cancelled %d abandoned upload sessions, pruned %d delivered webhook events", purged, pruned
            )
        return True

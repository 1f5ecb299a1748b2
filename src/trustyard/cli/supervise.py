"""Keeping Granian's workers up: ``trustyard serve`` runs its Granian server under this loop.

Granian respawns a worker that dies, but when a second one dies within 5.5 s of a respawn it decides it is in
a crash loop, stops every worker and exits, and the registry is gone with nothing to bring it back. That
window is not configurable; so when Granian stops on its own (not on SIGINT/SIGTERM) the loop starts it
again after a pause that doubles while the crashes keep coming (1 s up to a minute), and resets once it has
run for ``STABLE_SECONDS``. A stop on a signal (Ctrl-C, systemctl stop) ends the loop, and so does any other
error Granian raises (a certificate it cannot load), which starting again would not fix.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger("trustyard")

FIRST_PAUSE = 1.0
MAX_PAUSE = 60.0
STABLE_SECONDS = 300.0


class Serving(Protocol):
    """What this loop needs of ``granian.server.Server``."""

    interrupt_signal: bool

    def serve(self) -> None: ...


def serve_supervised(make_server: Callable[[], Serving]) -> None:
    """Run servers from ``make_server`` until one stops for good."""
    pause = FIRST_PAUSE
    while True:
        server, started = make_server(), time.monotonic()
        try:
            server.serve()
            return
        except SystemExit:
            if server.interrupt_signal:
                raise
        if time.monotonic() - started > STABLE_SECONDS:
            pause = FIRST_PAUSE
        log.error("Granian stopped after workers crashed; starting it again in %.0f s", pause)
        time.sleep(pause)
        pause = min(pause * 2, MAX_PAUSE)

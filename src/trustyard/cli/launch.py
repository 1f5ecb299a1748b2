"""The serving process after start-up: a thin launcher that runs Granian's workers under the supervisor.

``trustyard serve`` does its start-up work (settings, the data-dir lock, migrations, adoption, TLS files, the
admin account) with the whole application imported, then replaces itself (``os.execv``, same pid, the lock's
descriptor kept open) with ``python -m trustyard.cli.launch``. This module imports only Granian and the
supervisor, so the process that stays for the registry's lifetime holds ~25 MiB instead of a copy of the
application (~95 MiB) beside each worker; the workers import the application themselves
(``trustyard.app:worker_app``). What to launch comes in ``LAUNCH_ENV`` as JSON (no secrets: the workers'
settings travel in their own variable, as before).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trustyard.cli.supervise import serve_supervised

LAUNCH_ENV = "TRUSTYARD_LAUNCH"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # the same as trustyard.app's


@dataclass(frozen=True, slots=True)
class Launch:
    """Everything the launcher needs, as plain values."""

    host: str
    port: int
    workers: int
    log_level: str  # Granian's level name
    root_level: str  # the root logger's level (``logging`` name)
    loggers: dict[str, str]  # per-logger levels from the settings
    access_log: bool
    tls_cert: str | None
    tls_key: str | None

    def exec(self) -> None:
        """Replace this process with the launcher (never returns). Descriptors that must stay open (the
        data-dir lock) are made inheritable by the caller."""
        os.environ[LAUNCH_ENV] = json.dumps(asdict(self))
        # glibc gives each thread that mallocs its own arena (up to 8 per core), and each keeps the pages it
        # touched: the workers' threads (Granian's runtime, the executor that writes blobs, aiosqlite) would
        # each hold a few MiB after a burst. Two arenas per process are enough for a GIL-bound worker. Read by
        # glibc when the new image starts, so it covers the launcher and the workers it forks; an operator's
        # own setting wins.
        os.environ.setdefault("MALLOC_ARENA_MAX", "2")
        sys.stdout.flush()
        sys.stderr.flush()
        # -P: the working directory (the data directory, see serve) is not put on sys.path by -m.
        os.execv(sys.executable, [sys.executable, "-P", "-m", "trustyard.cli.launch"])


def main() -> None:
    launch = Launch(**json.loads(os.environ.pop(LAUNCH_ENV)))
    logging.basicConfig(format=LOG_FORMAT)
    logging.getLogger().setLevel(launch.root_level)
    for name, level in launch.loggers.items():
        logging.getLogger(name).setLevel(level.upper())
    from granian.constants import Interfaces, Loops, SSLProtocols
    from granian.log import LogLevels
    from granian.server import Server

    os.register_at_fork(after_in_child=_default_stop_signals)

    tls: dict[str, Any] = {}
    if launch.tls_cert is not None:
        cert, key = Path(launch.tls_cert), Path(launch.tls_key or "")
        tls = {"ssl_cert": cert, "ssl_key": key, "ssl_protocol_min": SSLProtocols.tls12}
    try:
        serve_supervised(
            lambda: Server(
                "trustyard.app:worker_app",
                address=launch.host,
                port=launch.port,
                interface=Interfaces.ASGI,
                workers=launch.workers,
                loop=Loops.auto,  # uvloop (a dependency): 12-17 % less CPU per small request than asyncio's
                factory=True,
                log_level=LogLevels(launch.log_level),
                log_access=launch.access_log,
                respawn_failed_workers=True,
                backlog=2048,
                **tls,
            )
        )
    except KeyboardInterrupt:
        sys.exit(130)


def _default_stop_signals() -> None:
    """In a worker Granian has just forked: SIGTERM and SIGINT back to their default, ending the process.

    The fork inherits the Python handler Granian's main process sets for them, and keeps it until the worker
    installs its own, after importing and building the application (a second or more). A stop signal in that
    window ran the inherited handler, which does nothing in a worker, so the worker went on to serve and the
    main process waited for it forever: `systemctl stop` or Ctrl-C just after a start hung. With the default
    action the signal ends the starting worker and the stop completes. (Starting workers as fresh interpreters
    instead, multiprocessing's "spawn", does the same but costs a resource-tracker process and ~4 MiB more per
    worker: 19 MiB in all.)"""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


if __name__ == "__main__":
    main()

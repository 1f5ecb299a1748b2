"""The Prometheus metrics trustyard exports, and prometheus_client's multi-process mode for Granian's workers.

Every metric is defined here, once, so their names and labels are one list (docs/monitoring.md shows it).
Each worker process writes its samples to memory-mapped files under ``PROMETHEUS_MULTIPROC_DIR``;
``/metrics`` on any worker sums every worker's files. ``enable_multiprocess`` is called by ``trustyard serve``
before workers fork: it empties the directory (counters restart with the server, as Prometheus expects) and
switches prometheus_client to file-backed values. Every metric has labels, so no value exists before that
switch. Without it (tests in one process, one-off commands) values live in memory and ``exposition`` reads
the default registry.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: Request latency buckets (seconds): registry calls range from sub-millisecond HEADs to minutes-long pushes.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

HTTP_REQUESTS = Counter(
    "trustyard_http_requests_total",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "trustyard_http_request_duration_seconds",
    "Time from the request's arrival to its last response byte, by route template and method.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
HTTP_BYTES_IN = Counter("trustyard_http_request_bytes_total", "Request body bytes received, by route.", ["route"])
HTTP_BYTES_OUT = Counter("trustyard_http_response_bytes_total", "Response body bytes sent, by route.", ["route"])
HTTP_IN_FLIGHT = Gauge(
    "trustyard_http_requests_in_flight",
    "Requests being answered right now, across this node's workers, by method.",
    ["method"],
    multiprocess_mode="livesum",
)

STORAGE_OPERATIONS = Counter(
    "trustyard_storage_operations_total", "Storage driver calls, by backend and operation.", ["backend", "operation"]
)
STORAGE_ERRORS = Counter(
    "trustyard_storage_errors_total",
    "Storage driver calls that failed (a missing object is not a failure), by backend and operation.",
    ["backend", "operation"],
)
STORAGE_LATENCY = Histogram(
    "trustyard_storage_operation_duration_seconds",
    "Time a storage driver call took (for streaming reads: until the stream opened), by backend and operation.",
    ["backend", "operation"],
    buckets=LATENCY_BUCKETS,
)

UPLOADS = Counter(
    "trustyard_uploads_total",
    "Blob upload sessions by outcome: started, completed, failed (wrong digest or size), cancelled, expired.",
    ["outcome"],
)
TOKENS_ISSUED = Counter(
    "trustyard_tokens_issued_total", "Registry tokens signed, by how the client authenticated.", ["grant"]
)
AUTH_FAILURES = Counter("trustyard_auth_failures_total", "Failed authentications, by where they happened.", ["reason"])
WEBHOOK_DELIVERIES = Counter(
    "trustyard_webhook_deliveries_total",
    "Webhook delivery attempts, by endpoint name and result (delivered, failed).",
    ["endpoint", "result"],
)


_pid = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _pid.__setitem__(0, os.getpid()))


def _process_id() -> int:
    """This process's pid, read once per process: prometheus_client checks it on every sample it writes (to
    notice a fork), and ``os.getpid`` is a system call, ~5 % of a small request's CPU. The fork hook above
    keeps it right in every forked child (Granian forks its workers)."""
    return _pid[0]


def _file_backed_values() -> None:
    values.ValueClass = values.MultiProcessValue(_process_id)  # type: ignore[no-untyped-call]


def enable_multiprocess(directory: Path) -> None:
    """Collect from several worker processes through files in ``directory``, emptied first. Call in the
    parent before workers start."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, mode=0o700)
    os.environ[MULTIPROC_ENV] = str(directory)
    _file_backed_values()


def mark_dead_workers() -> None:
    """Drop the live gauges of worker processes that no longer run (Granian respawns a crashed worker with a
    new pid; its in-flight gauge file would otherwise be summed forever). Counters of dead workers stay:
    what they counted happened."""
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return
    for path in Path(directory).glob("gauge_live*_*.db"):
        pid = int(path.stem.rpartition("_")[2])
        if not _running(pid):
            multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def exposition() -> tuple[bytes, str]:
    """The text exposition of every worker's metrics (or this process's, outside multi-process mode)."""
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    with contextlib.suppress(ValueError):  # a directory emptied under us: report what remains
        multiprocess.MultiProcessCollector(registry, directory)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST


# A worker of ``trustyard serve`` inherits PROMETHEUS_MULTIPROC_DIR, so prometheus_client chose file-backed
# values when it was imported; give them the cached pid too (no value exists yet: every metric has labels).
if getattr(values.ValueClass, "_multiprocess", False):
    _file_backed_values()

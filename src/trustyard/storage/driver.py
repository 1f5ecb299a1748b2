"""The StorageDriver protocol every backend implements, and the small value types it speaks.

Object-store shaped on purpose (DESIGN.md, "Storage contract"): keys are ``/``-separated relative paths,
objects are written whole and atomically, never appended to. Large writes go through *segmented uploads*
whose small state (``UploadState`` and ``Part``) the caller persists in SQL, so drivers hold no state and an
upload can continue in another process or after a restart.

Errors: a missing key raises ``ObjectNotFound``; anything the backend does wrong raises
``StorageUnavailable`` with the backend's own message (never credentials).
"""

from __future__ import annotations

import builtins
import re
from collections.abc import AsyncIterable, AsyncIterator, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    modified: float  # POSIX seconds


@dataclass(frozen=True, slots=True)
class UploadState:
    """Where a segmented upload is going and the backend's handle for it (e.g. an S3 UploadId)."""

    key: str
    token: str


@dataclass(frozen=True, slots=True)
class Part:
    """One written segment: parts are numbered from 1, contiguous, and cover [offset, offset + size)."""

    number: int
    offset: int
    size: int
    etag: str


@dataclass(frozen=True, slots=True)
class Patience:
    """How long a network driver waits for its store: tries per request, and the timeouts of each try."""

    attempts: int
    connect_timeout: float  # seconds to open a connection
    read_timeout: float  # seconds of silence from the store mid-request


#: Serving: ride out a short outage of the store (five tries, ~3 s of backoff between them) and a slow answer.
SERVING = Patience(attempts=5, connect_timeout=10.0, read_timeout=60.0)
#: Probing settings an operator is about to save: an answer in seconds (a dead endpoint took 20 s with
#: SERVING's retries, a silent one five minutes), with one retry so a blip does not fail the probe.
PROBING = Patience(attempts=2, connect_timeout=5.0, read_timeout=10.0)


def check_key(key: str) -> str:
    """``key`` if it is a safe relative key; ValueError if absolute, or with an empty/./.. component or NUL.

    Keys are built only by layout.py; every driver applies this check as defence in depth against path tricks
    (a backend may add rules of its own, as the filesystem does for its temp area)."""
    if not key or key.startswith("/") or "\0" in key:
        raise ValueError(f"invalid storage key {key[:200]!r}")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise ValueError(f"invalid storage key {key[:200]!r}")
    return key


def check_prefix(prefix: str) -> str:
    """A "directory" prefix without its trailing '/'; "" means the whole store."""
    prefix = prefix.removesuffix("/")
    return check_key(prefix) if prefix else ""


def check_range(offset: int, length: int | None) -> None:
    if offset < 0 or (length is not None and length < 0):
        raise ValueError(f"invalid range: offset {offset}, length {length}")


#: Secrets at least this long are redacted wherever they appear; shorter ones only where they stand alone.
_REDACT_ANYWHERE = 8


def redact(message: str, secrets: Iterable[str]) -> str:
    """``message`` with each secret replaced by ``[redacted]``: the network drivers pass every error text
    through this, so no credential reaches an error or a log line, whatever a store echoed back.

    A short secret is replaced only where no letter or digit touches it: replacing a password such as ``o``
    everywhere made "Could not connect" read "C[redacted]uld n[redacted]t ...", and inside a longer word a
    short secret cannot be told from the word. Standing alone (``password=o;``, ``"o"``) it is redacted."""
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        if len(secret) >= _REDACT_ANYWHERE:
            message = message.replace(secret, "[redacted]")
        else:
            message = re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", "[redacted]", message)
    return message


@runtime_checkable
class StorageDriver(Protocol):
    @property
    def min_part_size(self) -> int:
        """Smallest part worth writing, except the last: S3 refuses smaller ones (5 MiB); Swift takes any size but
        a part costs several requests (1 MiB). The uploads service parks smaller bodies as one object and puts a
        blob that never reaches it whole, and the registry advertises it as ``OCI-Chunk-Min-Length``. 1 where a
        part costs no more than an object."""
        ...

    @property
    def max_part_size(self) -> int:
        """Largest single part (S3: 5 GiB)."""
        ...

    @property
    def name(self) -> str:
        """Name of the backend for logs and settings ("filesystem", "memory", "s3", "swift")."""
        ...

    async def stat(self, key: str) -> ObjectInfo | None:
        """Size and modification time, or None when the key does not exist."""
        ...

    def read(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """Stream ``length`` bytes (all when None) from ``offset``. Raises ObjectNotFound on first use."""
        ...

    async def get(self, key: str) -> bytes:
        """A small object whole (links, manifests). Raises ObjectNotFound."""
        ...

    async def put(self, key: str, data: bytes) -> None:
        """Write a small object atomically, replacing any previous one."""
        ...

    async def write(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Stream an object in atomically: readers see the old object or the whole new one, never a part.

        Returns the number of bytes written. If ``chunks`` raises, nothing is visible and the error propagates.
        """
        ...

    async def delete(self, key: str) -> None:
        """Remove one object; a missing key is not an error."""
        ...

    async def delete_prefix(self, prefix: str) -> None:
        """Remove every object whose key starts with ``prefix`` + '/' (a "directory")."""
        ...

    def list(self, prefix: str) -> AsyncIterator[str]:
        """Every key under the "directory" ``prefix`` (recursive, full keys, any order)."""
        ...

    async def move(self, source: str, destination: str) -> None:
        """Make ``source``'s bytes visible at ``destination`` atomically, then remove ``source``."""
        ...

    async def redirect_url(self, key: str, method: str = "GET") -> str | None:
        """A URL a client may fetch directly (presigned / temp URL), or None to stream through us."""
        ...

    def local_path(self, key: str) -> str | None:
        """A filesystem path the HTTP edge can read the bytes from itself, or None when they are not local files."""
        ...

    async def start_upload(self, key: str) -> UploadState:
        """Begin a segmented upload whose finished object will appear at ``key``."""
        ...

    async def write_part(self, upload: UploadState, number: int, offset: int, chunks: AsyncIterable[bytes]) -> Part:
        """Write part ``number`` starting at byte ``offset`` of the object. Rewriting a number replaces it."""
        ...

    async def complete_upload(self, upload: UploadState, parts: builtins.list[Part], key: str | None = None) -> None:
        """Assemble ``parts`` (in order) into the object at ``key`` (default ``upload.key``), atomically. A
        ``key`` of its own puts a verified blob straight in its place, without a ``move`` after (one step,
        where a driver can: a rename on the filesystem, the manifest's own name on Swift)."""
        ...

    async def abort_upload(self, upload: UploadState) -> None:
        """Discard an upload and everything written for it; idempotent."""
        ...

    async def sweep_staging(self, recorded: Mapping[str, Collection[str]]) -> int:
        """Delete what interrupted writes left in the driver's own staging area: temp files of atomic writes,
        and upload bytes no session records (``recorded`` maps every live upload token to the etags of its
        recorded parts). Only while nothing writes (``serve`` at start, under its data-dir lock). Returns the
        number of files removed; drivers without a staging area of their own remove nothing."""
        ...

    def open_uploads(self, started_before: float) -> AsyncIterator[UploadState]:
        """Segmented uploads still open (neither completed nor aborted) begun before ``started_before`` (POSIX
        seconds): garbage collection aborts those no session in SQL names any more (a crash between claiming a
        session and completing it, or an incomplete S3 multipart upload)."""
        ...

    async def close(self) -> None:
        """Release connections and handles."""
        ...

"""One registry per data directory and per listen address: what ``trustyard serve`` checks before it starts.

Two registries on one data directory would each create their own CA and race on the index; two on one
address (Granian binds with SO_REUSEPORT) would silently split the connections between them. So ``serve``
takes an exclusive ``flock`` on ``DATA_DIR/serve.lock`` for as long as its process lives and writes its PID
there, and refuses to start when the address already has a listener. The kernel drops the lock when the
process dies however it dies, so a lock file left by a dead PID is simply taken over.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from pathlib import Path

import click

LOCK_FILE = "serve.lock"

#: The open lock files of this process: closing one would release its lock.
_held: list[int] = []


def hold_data_dir(data_dir: Path) -> None:
    """Lock ``data_dir`` for this process's lifetime, or exit with who holds it."""
    path = data_dir / LOCK_FILE
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise click.ClickException(f"cannot use {data_dir} as the data directory: {exc.strerror}") from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(descriptor)
        raise click.ClickException(
            f"{data_dir} is in use by another trustyard serve (pid {holder}); stop it first, "
            "or give this one its own --data-dir"
        ) from None
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
    _held.append(descriptor)


def keep_across_exec() -> None:
    """Keep the held locks through ``os.execv`` (``serve`` becomes the launcher: same process, same locks)."""
    for descriptor in _held:
        os.set_inheritable(descriptor, True)


def check_address_free(host: str, port: int) -> None:
    """Exit when something already listens on ``host:port`` (a plain bind fails where SO_REUSEPORT would
    let a second server share the port unnoticed)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # connections in TIME_WAIT do not count
        if family == socket.AF_INET6:
            with contextlib.suppress(OSError):
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise click.ClickException(
                    f"{host}:{port} is already served by another process (another trustyard serve?); "
                    "stop it, or choose another --listen"
                ) from None
            raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None

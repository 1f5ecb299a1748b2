"""``trustyard serve`` as real processes: one registry per data dir and address, workers that never outlive
it, a crash loop survived, staging swept after a crash, and what a TLS registry shows and sends."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import re
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ..e2e import Registry, Server, free_port, start_registry, trustyard_bin, wait_until

DEADLINE = 60.0  # generous: the machine is shared; every wait below polls and returns as soon as it can


def poll(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {DEADLINE:.0f} s: {what}")
        time.sleep(0.1)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def workers(main_pid: int) -> set[int]:
    children = Path(f"/proc/{main_pid}/task/{main_pid}/children")
    return {int(pid) for pid in children.read_text().split()} if children.exists() else set()


def answers(registry: Registry) -> bool:
    try:
        return httpx.get(f"{registry.url}/v2/", verify=registry.ssl_context(), timeout=5).status_code == 401
    except httpx.TransportError:
        return False


def serve(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Another ``trustyard serve``, expected to refuse at once (a timeout here means it started)."""
    command = [trustyard_bin(), "serve", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    running = start_registry("trustyard", tmp_path_factory.mktemp("serve") / "data")
    try:
        yield running
    finally:
        running.stop()


def test_a_second_serve_on_the_same_address_is_refused(registry: Registry, tmp_path: Path) -> None:
    refused = serve("--data-dir", tmp_path / "other", "--listen", registry.host)
    assert refused.returncode != 0
    assert f"{registry.host} is already served by another process" in refused.stderr
    assert answers(registry)


def test_a_second_serve_on_the_same_data_dir_is_refused(registry: Registry) -> None:
    refused = serve("--data-dir", registry.data_dir, "--listen", f"127.0.0.1:{free_port()}")
    assert refused.returncode != 0
    assert f"in use by another trustyard serve (pid {registry.server.proc.pid})" in refused.stderr
    assert answers(registry)


def test_the_ca_fingerprint_is_printed_at_start_and_by_the_cli(registry: Registry) -> None:
    assert registry.ca is not None
    fetched = x509.load_pem_x509_certificate(registry.ca.read_bytes()).fingerprint(hashes.SHA256())
    expected = fetched.hex(":").upper()
    assert f"CA SHA-256 fingerprint: {expected}" in registry.server.log.read_text()
    shown = subprocess.run(
        [trustyard_bin(), "ca", "--data-dir", registry.data_dir], capture_output=True, text=True, check=True
    )
    assert f"SHA-256 fingerprint: {expected}" in shown.stdout
    assert str(registry.data_dir / "tls" / "ca.crt") in shown.stdout


def test_tls_responses_carry_hsts(registry: Registry) -> None:
    response = httpx.get(f"{registry.url}/v2/", verify=registry.ssl_context())
    assert response.headers["strict-transport-security"] == "max-age=31536000"


def test_content_length_with_invalid_chunked_encoding_is_a_400(registry: Registry) -> None:
    """Granian reports the broken body as a disconnect; that was an unhandled ClientDisconnect, a 500."""
    context = registry.ssl_context()
    assert isinstance(context, ssl.SSLContext)
    request = (
        f"PUT /v2/admin/app/manifests/1 HTTP/1.1\r\nHost: {registry.host}\r\n"
        "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n"
        "Content-Length: 10\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nnot chunked at all\r\n"
    ).encode()
    raw = socket.create_connection(("127.0.0.1", registry.port))
    with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(request)
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    status = answer.split(b"\r\n", 1)[0]
    assert status.startswith(b"HTTP/1.1 4"), answer
    assert b"500" not in status


def test_secrets_are_private_files(registry: Registry) -> None:
    data = registry.data_dir
    assert data.stat().st_mode & 0o777 == 0o700
    for private in ("trustyard.db", "keys/secret.key", "tls/ca.key"):
        assert (data / private).stat().st_mode & 0o777 == 0o600, private
    # The token and session keys live in the database, sealed with keys/secret.key (services/shared_secrets.py).
    assert sorted(path.name for path in (data / "keys").iterdir()) == ["secret.key"]


def test_workers_end_with_a_killed_main_process_and_a_restart_sweeps_staging(tmp_path: Path) -> None:
    running = start_registry("trustyard", tmp_path / "data")
    try:
        location, recorded = _upload_with_one_part(running)
        staging = running.storage_root / ".trustyard-tmp"
        live = next(p for p in (staging / "uploads").iterdir() if p.is_dir())
        left = [
            staging / "0123456789abcdef0123456789abcdef",  # an atomic write cut off
            staging / "uploads" / ("f" * 32) / f"1.{'e' * 32}",  # a session whose row is gone
            live / f"2.{'d' * 32}",  # a PATCH of a live session cut off before it was recorded
        ]
        for path in left:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x" * 4096)
        pid = running.server.proc.pid
        assert workers(pid)
        os.kill(pid, signal.SIGKILL)
        running.server.proc.wait()  # reaped: a zombie would still count as a member of the group
        poll(lambda: not group_alive(pid), "every worker gone after kill -9 of trustyard serve")
    finally:
        running.stop()
    restarted = dataclasses.replace(running, server=Server(running.server.cmd, running.server.log))
    try:
        wait_until(lambda: answers(restarted), restarted.server, "trustyard serve, restarted")
        assert not [path for path in left if path.exists()]
        assert "removed 3 staged files" in restarted.server.log.read_text().rpartition("listening on")[0]
        assert (live / recorded).exists()
        assert (live / "key").exists()  # what garbage collection reads of an open upload stays too
        with restarted.http() as client:  # the session goes on where its recorded part ended
            data = b"a" * 1000 + b"b" * 1000
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            done = client.put(location, params={"digest": digest}, content=data[1000:])
            assert done.status_code == 201, done.text
    finally:
        restarted.stop()


def test_a_stop_while_the_workers_start_ends_every_process(tmp_path: Path) -> None:
    """SIGTERM to ``serve`` alone, as systemd's ``KillMode=mixed`` sends it, while the workers still import and
    build the application: a forked worker kept Granian's handler from the main process until it installed
    its own, the signal did nothing there, and ``serve`` waited for that worker forever."""
    port = free_port()
    log = tmp_path / "serve.log"
    command = [trustyard_bin(), "serve", "--data-dir", tmp_path / "data", "--listen", f"127.0.0.1:{port}"]
    server = Server(command, log, env={**os.environ, "TRUSTYARD_ADMIN_PASSWORD": "stop-while-starting-1234"})
    try:
        pid = server.proc.pid
        poll(lambda: "Spawning worker-2" in log.read_text(), "Granian forking its workers")
        os.kill(pid, signal.SIGTERM)
        server.proc.wait(DEADLINE)  # raises TimeoutExpired where serve waits for a worker that never stops
        poll(lambda: not group_alive(pid), "every worker gone after SIGTERM to trustyard serve")
    finally:
        server.stop()


def _upload_with_one_part(registry: Registry) -> tuple[str, str]:
    """An upload session of admin/app holding 1000 bytes; its location and its part's file name."""
    with registry.http() as client:
        started = client.post("/v2/admin/app/blobs/uploads/")
        assert started.status_code == 202, started.text
        location = started.headers["location"]
        patched = client.patch(location, content=b"a" * 1000, headers={"Content-Type": "application/octet-stream"})
        assert patched.status_code == 202, patched.text
    staging = registry.storage_root / ".trustyard-tmp" / "uploads"
    (part,) = [p.name for p in staging.glob("*/*") if p.name != "key"]  # "key": the upload's target (for gc)
    assert re.fullmatch(r"o0\.[0-9a-f]{32}", part)  # the staging file of the part starting at byte 0
    return location, part


def test_workers_crashing_twice_within_seconds_do_not_end_the_registry(tmp_path: Path) -> None:
    """Granian stops everything when a respawned worker dies within 5.5 s ("crash loop detected")."""
    running = start_registry("trustyard", tmp_path / "data")
    try:
        pid, killed = running.server.proc.pid, set()

        def kill_workers_until_granian_gives_up() -> bool:
            # Every worker as soon as it is (re)spawned: which death Granian counts as a loop depends on the
            # order it notices them in, so keep going until it says so.
            if "Worker crash loop detected" in running.server.log.read_text():
                return True
            for worker in workers(pid) - killed:
                killed.add(worker)
                with contextlib.suppress(ProcessLookupError):  # gone since /proc was read
                    os.kill(worker, signal.SIGKILL)
            return False

        poll(kill_workers_until_granian_gives_up, "Granian's crash loop exit")
        poll(lambda: answers(running), "the registry answering again")
        assert "Granian stopped after workers crashed; starting it again" in running.server.log.read_text()
        assert running.server.alive()
    finally:
        running.stop()

"""The README's first command, as a newcomer types it: ``./scripts/serve`` with no flags in a fresh copy.

The copy holds the repository's files (what ``git ls-files`` lists, as a clone would) and no ``.venv``, so
the script creates its own, installs trustyard and serves TLS on the default data directory
``./trustyard-data``. The test then does what the README tells a user to do: read the admin password the
first start prints, fetch the CA from ``/ca``, log in, and push and pull an image with skopeo verifying TLS
against that CA. Only the listening address comes from the environment (``TRUSTYARD_LISTEN``, documented in
the README), so the test never fights over port 5000.
"""

from __future__ import annotations

import re
import shutil
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from . import REPO_ROOT, Clients, Registry, Server, free_port, wait_until

pytestmark = pytest.mark.trustyard_only(reason="runs trustyard's own ./scripts/serve")

PASSWORD_LINE = re.compile(r"created user admin with password: (\S+)")
#: Creating the venv and installing trustyard into it comes first; on a loaded machine that takes a while.
FIRST_START_TIMEOUT = 900.0


def fresh_copy(destination: Path) -> Path:
    """The repository's files as a clone has them (tracked and new, not ignored), without .venv or data."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if not source.is_file():  # deleted in the working tree
            continue
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return destination


def test_scripts_serve_with_no_flags_from_a_fresh_copy(
    tmp_path: Path, clients: Clients, busybox_layout: Path, repo: str
) -> None:
    clone = fresh_copy(tmp_path / "trustyard")
    assert not (clone / ".venv").exists()
    port = free_port()
    log = tmp_path / "serve.log"
    env = {key: value for key, value in clients.env.items() if not key.startswith("TRUSTYARD_")}
    env["TRUSTYARD_LISTEN"] = f"127.0.0.1:{port}"
    server = Server(["./scripts/serve"], log, env=env, cwd=clone)
    try:
        password = ""

        def printed_password() -> bool:
            nonlocal password
            found = PASSWORD_LINE.search(log.read_text(errors="replace"))
            password = found.group(1) if found else ""
            return bool(password)

        wait_until(printed_password, server, "./scripts/serve", timeout=FIRST_START_TIMEOUT)
        # "Shown once": one line, not an echo and a log record of it on the same terminal.
        assert len(PASSWORD_LINE.findall(log.read_text(errors="replace"))) == 1
        # The data directory is where the command was typed, with its CA and certificate.
        data_dir = clone / "trustyard-data"
        assert (data_dir / "tls" / "ca.crt").is_file()

        cert_dir = tmp_path / "certs"
        cert_dir.mkdir()

        def ca_fetched() -> bool:
            try:  # trust on first use, as the README says: fetch /ca without verifying, then verify with it
                response = httpx.get(f"https://127.0.0.1:{port}/ca", verify=False, timeout=5)
            except httpx.TransportError:
                return False
            if response.status_code != 200:
                return False
            (cert_dir / "ca.crt").write_bytes(response.content)
            return True

        wait_until(ca_fetched, server, "./scripts/serve")
        assert (cert_dir / "ca.crt").read_bytes() == (data_dir / "tls" / "ca.crt").read_bytes()
        verified = httpx.get(
            f"https://127.0.0.1:{port}/v2/", verify=ssl.create_default_context(cafile=cert_dir / "ca.crt"), timeout=10
        )
        assert verified.status_code == 401

        registry = Registry("trustyard", data_dir, port, server, cert_dir=cert_dir, password=password, secret=password)
        clients.login(registry)  # skopeo login --cert-dir CERTS -u admin -p PASSWORD
        pushed = clients.push(busybox_layout, "latest", registry.ref(repo, "1.0"))
        pulled = tmp_path / "pulled"
        clients.copy(registry.ref(repo, "1.0"), f"oci:{pulled}:1.0")
        index = (pulled / "index.json").read_text()
        assert pushed in index
        assert clients.list_tags(registry.ref(repo)) == ["1.0"]
    finally:
        server.stop()

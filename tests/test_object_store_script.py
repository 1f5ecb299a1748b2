"""scripts/object-store.sh, the test suite's Swift and moto: a second store of its own (own directory, own
ports), so the suite's store is never touched.

The case here once failed a whole run: the store outlives the run that started it, and moto ran from that
run's checkout. With the checkout deleted, moto still answered the script's probe (ListBuckets) and failed
every CreateBucket with a 500 (a lazy import of a deleted file), so every S3 test of the next run errored.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.e2e import free_port

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "object-store.sh"
PORTS = ("PROXY", "OBJECT", "CONTAINER", "ACCOUNT", "MEMCACHED", "MOTO")


def moto_program(directory: Path) -> str:
    """A moto server started from ``directory``, as moto runs from a checkout's .venv."""
    directory.mkdir(parents=True)
    program = directory / "moto_server.py"
    program.write_text("from moto.server import main\n\nmain()\n")
    return f"{sys.executable} {program}"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    directory = tmp_path / "store"
    env = {
        **os.environ,
        **{f"OBJECT_STORE_{name}_PORT": str(free_port()) for name in PORTS},
        "OBJECT_STORE_LOG_LEVEL": "WARNING",
        "OBJECT_STORE_NO_INSTALL": "1",
    }
    try:
        yield directory, env
    finally:
        subprocess.run(["bash", SCRIPT, "stop", directory], env=env, capture_output=True, timeout=60, check=False)


def start(directory: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", SCRIPT, "start", "--with-moto", directory],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_a_moto_whose_virtualenv_was_deleted_is_restarted(store: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    if shutil.which("swift-init") is None and not Path("/usr/lib/python3/dist-packages/swift").exists():
        pytest.skip("Debian's swift packages are not installed (scripts/test installs them)")
    directory, env = store
    first = start(directory, {**env, "OBJECT_STORE_MOTO_SERVER": moto_program(tmp_path / "deleted-checkout")})
    assert first.returncode == 0, first.stderr

    shutil.rmtree(tmp_path / "deleted-checkout")
    again = start(directory, {**env, "OBJECT_STORE_MOTO_SERVER": moto_program(tmp_path / "this-checkout")})
    assert again.returncode == 0, again.stderr
    assert "is gone (its virtualenv was deleted): restarting moto" in again.stderr
    assert str(tmp_path / "this-checkout") in (directory / "log" / "moto.log").read_text()
    endpoint = f"http://127.0.0.1:{env['OBJECT_STORE_MOTO_PORT']}"
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test")
    bucket = f"restarted-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)  # the 500 of the stale moto
    assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]

    untouched = start(directory, {**env, "OBJECT_STORE_MOTO_SERVER": moto_program(tmp_path / "a-third-checkout")})
    assert untouched.returncode == 0, untouched.stderr
    assert "restarting moto" not in untouched.stderr  # a moto whose files exist is left running
    assert "already running" in untouched.stderr

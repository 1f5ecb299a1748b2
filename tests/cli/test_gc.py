"""``trustyard gc``: a summary line (and a progress display on stderr), dry runs, durations, history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from trustyard.cli.main import main
from trustyard.config import load_settings
from trustyard.oci.digest import Digest
from trustyard.storage import layout

pytestmark = pytest.mark.usefixtures("data")  # tests/cli/conftest.py: tmp_path / "data", as serve leaves it


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["gc", *args])
    return result.exit_code, result.output


def test_collects_unrecorded_bytes_and_shows_history(tmp_path: Path) -> None:
    data = tmp_path / "data"
    code, out = invoke("--data-dir", str(data))
    assert code == 0, out
    assert "removed 0 expired tags, 0 blobs" in out
    # Bytes a push wrote but never recorded (it died): collected once older than the grace window.
    root = load_settings(None, data_dir=data).default_storage_root
    orphan = root / layout.blob_data(Digest.of(b"orphan"))
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"orphan")

    code, out = invoke("--data-dir", str(data), "--dry-run", "--grace", "0s")
    assert code == 0, out
    assert "(dry run): would remove" in out
    assert "1 unrecorded leftovers; 6 B to free" in out
    assert orphan.exists()

    code, out = invoke("--data-dir", str(data))  # default grace (2h): too fresh to touch
    assert orphan.exists()

    code, out = invoke("--data-dir", str(data), "--grace", "0s")
    assert code == 0, out
    assert "1 unrecorded leftovers; 6 B freed" in out
    assert not orphan.exists()

    code, out = invoke("history", "--data-dir", str(data), "--limit", "2")
    assert code == 0, out
    runs = json.loads(out)["runs"]
    assert [r["status"] for r in runs] == ["succeeded", "succeeded"]
    assert runs[0]["report"]["orphans"] == 1
    assert runs[1]["report"]["orphans"] == 0


def test_a_bad_duration_says_how_to_write_one(tmp_path: Path) -> None:
    code, out = invoke("--data-dir", str(tmp_path / "data"), "--grace", "two hours")
    assert code == 2
    assert "write it like 90s, 30m, 2h" in out

"""trustyard/metrics.py: the live gauges of worker processes that died are dropped; everything else stays."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from trustyard import metrics


def test_dead_workers_live_gauges_are_dropped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(finished.stdout)  # a process that has exited: its pid is not running (nor reused this soon)
    alive = os.getpid()
    for name in (f"gauge_livesum_{dead}.db", f"gauge_livesum_{alive}.db", f"counter_{dead}.db"):
        (tmp_path / name).write_bytes(b"")
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))
    metrics.mark_dead_workers()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"counter_{dead}.db", f"gauge_livesum_{alive}.db"]

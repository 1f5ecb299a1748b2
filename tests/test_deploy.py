"""deploy/trustyard.service: the systemd unit docs/deploy.md installs."""

from __future__ import annotations

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_unit_restarts_serve_and_matches_the_docs() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ROOT / "deploy" / "trustyard.service")
    service = unit["Service"]
    assert service["Restart"] == "on-failure"
    assert service["KillMode"] == "mixed"
    assert service["StateDirectoryMode"] == "0700"
    executable, command, *flags = service["ExecStart"].split()
    assert command == "serve"
    assert "--data-dir" in flags
    docs = (ROOT / "docs" / "deploy.md").read_text()
    assert f"sudo python3 -m venv {Path(executable).parent.parent}" in docs
    assert "install -m 0644 deploy/trustyard.service /etc/systemd/system/trustyard.service" in docs
    assert unit["Install"]["WantedBy"] == "multi-user.target"

"""``trustyard policy set|list|plan|delete``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from trustyard.cli.main import main

pytestmark = pytest.mark.usefixtures("data")  # tests/cli/conftest.py: tmp_path / "data", as serve leaves it


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["policy", *args])
    return result.exit_code, result.output


def test_set_list_plan_delete(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    code, out = invoke("set", "team/*", "--data-dir", data, "--immutable", "--keep-last", "5", "--keep-tags", "v*")
    assert code == 0, out
    assert json.loads(out)["keep_last"] == 5
    code, out = invoke("list", "--data-dir", data)
    assert [p["pattern"] for p in json.loads(out)] == ["team/*"]
    code, out = invoke("plan", "--data-dir", data)
    assert code == 0, out
    assert json.loads(out) == []
    code, out = invoke("set", "Team/*", "--data-dir", data)
    assert code == 1
    assert "is not a repository pattern" in out
    code, out = invoke("delete", "team/*", "--data-dir", data)
    assert code == 0, out
    code, out = invoke("delete", "team/*", "--data-dir", data)
    assert code == 1
    assert "there is no tag policy for 'team/*'" in out

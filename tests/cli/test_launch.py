"""The thin launcher ``serve`` execs into: what it passes to the new image."""

from __future__ import annotations

import json
import os

import pytest

from trustyard.cli import launch
from trustyard.cli.launch import LAUNCH_ENV, Launch

LAUNCH = Launch("127.0.0.1", 5000, 2, "warning", "WARNING", {}, False, None, None)


class Exec(Exception):
    """Stands in for ``os.execv``, which would replace the test process."""


def _exec(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    argv: list[str] = []

    def execv(path: str, args: list[str]) -> None:
        argv.extend(args)
        raise Exec

    monkeypatch.setattr(launch.os, "execv", execv)
    with pytest.raises(Exec):
        LAUNCH.exec()
    return argv


def test_exec_runs_the_launcher_with_its_settings_and_two_malloc_arenas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.delenv(LAUNCH_ENV, raising=False)
    argv = _exec(monkeypatch)
    assert argv[-2:] == ["-m", "trustyard.cli.launch"]
    assert Launch(**json.loads(os.environ[LAUNCH_ENV])) == LAUNCH
    assert os.environ["MALLOC_ARENA_MAX"] == "2"


def test_an_operators_malloc_arena_max_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    monkeypatch.delenv(LAUNCH_ENV, raising=False)
    _exec(monkeypatch)
    assert os.environ["MALLOC_ARENA_MAX"] == "8"

"""Log levels: trustyard's own at ``log_level``, the libraries' at WARNING (httpx wrote one INFO line per
Swift request, SQLAlchemy's echo ~930 lines at start) unless ``trace`` or ``loggers`` asks for more."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from trustyard.app import LIBRARY_LOGGERS, configure_logging
from trustyard.config import Settings, load_settings
from trustyard.errors import ConfigInvalid


@pytest.fixture(autouse=True)
def restore_levels() -> Iterator[None]:
    names = [None, "sqlalchemy.engine", *LIBRARY_LOGGERS]
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def level(name: str) -> int:
    return logging.getLogger(name).getEffectiveLevel()


def test_libraries_are_quiet_at_info_and_debug() -> None:
    for chosen in ("info", "debug"):
        configure_logging(Settings(log_level=chosen))
        assert level("trustyard.storage.swift") == logging.getLevelName(chosen.upper())
        assert level("httpx") == logging.WARNING
        assert level("sqlalchemy.engine.Engine") == logging.WARNING
        assert level("alembic.runtime.migration") == logging.WARNING


def test_trace_shows_everything_and_loggers_pick_one() -> None:
    configure_logging(Settings(log_level="trace"))
    assert level("sqlalchemy.engine.Engine") == logging.INFO  # the SQL statements
    assert level("httpx") == logging.DEBUG
    configure_logging(Settings(loggers={"httpx": "info"}))
    assert level("httpx") == logging.INFO
    assert level("botocore") == logging.WARNING


def test_an_unknown_level_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTYARD_LOG_LEVEL", "verbose")
    with pytest.raises(ConfigInvalid, match="log_level"):
        load_settings()

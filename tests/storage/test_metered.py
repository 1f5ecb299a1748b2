"""MeteredDriver: every call reaches the backend once and is counted by backend and operation; a missing object
is an answer, not an error; a failure is an error."""

from __future__ import annotations

import pytest

from trustyard import metrics
from trustyard.errors import ObjectNotFound
from trustyard.storage.memory import MemoryDriver
from trustyard.storage.metered import MeteredDriver


def count(operation: str) -> float:
    return metrics.STORAGE_OPERATIONS.labels("memory", operation)._value.get()


def errors(operation: str) -> float:
    return metrics.STORAGE_ERRORS.labels("memory", operation)._value.get()


async def test_calls_and_streams_are_counted_and_answered_by_the_backend() -> None:
    driver = MeteredDriver(MemoryDriver())
    puts, reads, moves = count("put"), count("read"), count("move")
    await driver.put("a", b"data")
    await driver.move("a", "b")
    assert b"".join([chunk async for chunk in driver.read("b")]) == b"data"
    assert (count("put"), count("read"), count("move")) == (puts + 1, reads + 1, moves + 1)
    assert driver.name == "memory"


async def test_a_missing_object_is_not_an_error_but_a_failure_is() -> None:
    driver = MeteredDriver(MemoryDriver())
    before = errors("get")
    with pytest.raises(ObjectNotFound):
        await driver.get("missing")
    assert errors("get") == before
    failing = errors("put")
    with pytest.raises(ValueError, match="invalid storage key"):
        await driver.put("../escape", b"x")
    assert errors("put") == failing + 1

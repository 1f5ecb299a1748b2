"""The Swift API of scripts/object-store.sh for tests: a fresh container per test, inspected with plain httpx.

Endpoint and credentials come from the variables ``object-store.sh start`` prints (its defaults otherwise);
when the endpoint does not answer, the test skips and says how to start it.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest

from trustyard.storage.config import SwiftStorage
from trustyard.storage.swift import SwiftDriver

START = 'eval "$(bash scripts/object-store.sh start)" (scripts/test does this)'
MiB = 1024 * 1024


@dataclass(frozen=True)
class Account:
    authurl: str
    username: str
    password: str


def account() -> Account:
    """The tempauth account of the object store; skips the test when nothing answers there."""
    url = os.environ.get("SWIFT_AUTH_URL", "http://127.0.0.1:8080/auth/v1.0")
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=1).close()
    except OSError:
        pytest.skip(f"the object store's Swift endpoint {url} is not running: {START}")
    return Account(url, os.environ.get("SWIFT_USERNAME", "test:tester"), os.environ.get("SWIFT_PASSWORD", "testing"))


def admin_session(where: Account) -> tuple[str, str]:
    """(storage URL, token) from a plain v1.0 auth request: the tests' own view of the store."""
    response = httpx.get(where.authurl, headers={"X-Auth-User": where.username, "X-Auth-Key": where.password})
    response.raise_for_status()
    return response.headers["X-Storage-Url"], response.headers["X-Auth-Token"]


@dataclass
class SwiftContainer:
    """One container for one test, named trustyard-test-<uuid>; ``remove`` deletes it when it is empty."""

    where: Account
    name: str
    prefix: str = "reg"
    chunksize: int = MiB  # Distribution's minimum: the contract's MiB-sized payloads become SLOs
    extra: dict[str, Any] = field(default_factory=dict)
    storage_url: str = ""
    token: str = ""

    @classmethod
    def create(cls, **options: Any) -> SwiftContainer:
        where = account()
        made = cls(where, f"trustyard-test-{uuid.uuid4().hex[:12]}", **options)
        made.storage_url, made.token = admin_session(where)
        return made  # the driver creates the container itself, as it must

    def settings(self, **overrides: Any) -> SwiftStorage:
        values: dict[str, Any] = {
            "authurl": self.where.authurl,
            "username": self.where.username,
            "password": self.where.password,
            "container": self.name,
            "prefix": self.prefix,
            "chunksize": self.chunksize,
            **self.extra,
            **overrides,
        }
        return SwiftStorage(**values)

    def driver(self, **overrides: Any) -> SwiftDriver:
        return SwiftDriver(self.settings(**overrides), backoff=0.01)

    def url(self, name: str = "") -> str:
        return f"{self.storage_url}/{self.name}" + (f"/{quote(name)}" if name else "")

    def head(self, name: str = "", params: dict[str, str] | None = None) -> httpx.Response:
        return httpx.head(self.url(name), params=params, headers={"X-Auth-Token": self.token})

    def delete(self, name: str) -> None:
        httpx.delete(self.url(name), headers={"X-Auth-Token": self.token}).raise_for_status()

    def remove_account_tempurl_key(self) -> None:
        headers = {"X-Auth-Token": self.token, "X-Remove-Account-Meta-Temp-Url-Key": "x"}
        httpx.post(self.storage_url, headers=headers).raise_for_status()

    def names(self, prefix: str = "") -> list[str]:
        """Every object name in the container (one listing page is plenty for a test)."""
        response = httpx.get(
            self.url(), params={"format": "json", "prefix": prefix}, headers={"X-Auth-Token": self.token}
        )
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return [entry["name"] for entry in response.json()] if response.status_code == 200 else []

    def segments(self) -> list[str]:
        return self.names(f"{self.prefix}/segments/")

    def leftovers(self) -> list[str]:
        """Anything at all in the container: no keys remain after a test, so no segments or markers either."""
        return self.names()

    def remove(self) -> None:
        # Only an empty container can go; a non-empty one stays for inspection (the test failed on it anyway).
        httpx.delete(self.url(), headers={"X-Auth-Token": self.token})

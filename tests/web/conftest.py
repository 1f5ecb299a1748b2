"""The web UI in process: the app as ``trustyard serve`` builds it, driven over ASGI by httpx like a browser
(cookies kept, forms posted with the CSRF token the page carries)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.registry.conftest import ADMIN_PASSWORD, Registry, running

BASE_URL = "https://registry.test"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Browser:
    """One browser: its own cookie jar. ``post`` sends the CSRF token of the last page it loaded."""

    http: httpx.AsyncClient
    csrf: str = ""

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.http.get(path, **kwargs)
        if found := _CSRF.search(response.text):
            self.csrf = found.group(1)
        return response

    async def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
        response = await self.http.post(path, data={"csrf": self.csrf, **(data or {})}, **kwargs)
        if found := _CSRF.search(response.text):
            self.csrf = found.group(1)
        return response

    async def login(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> httpx.Response:
        await self.get("/login")
        response = await self.post("/login", {"username": username, "password": password})
        await self.get("/repositories")
        return response


def browser_of(registry: Registry) -> Browser:
    transport = httpx.ASGITransport(app=registry.asgi)
    return Browser(httpx.AsyncClient(transport=transport, base_url=BASE_URL))


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[Registry]:
    async with running(tmp_path / "data") as started:
        yield started


@pytest.fixture
async def browser(registry: Registry) -> AsyncIterator[Browser]:
    web = browser_of(registry)
    async with web.http:
        yield web


@pytest.fixture
async def admin(browser: Browser) -> Browser:
    response = await browser.login()
    assert response.status_code == 303, response.text
    return browser


@pytest.fixture
async def admin_browser(registry: Registry) -> AsyncIterator[Browser]:
    """A second browser, logged in as admin."""
    web = browser_of(registry)
    async with web.http:
        await web.login()
        yield web

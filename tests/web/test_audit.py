"""The audit log page: newest first, filters, pagination."""

from __future__ import annotations

import pytest

from tests.registry.conftest import Registry, push_image
from trustyard.web import audit

from .conftest import Browser


async def test_filter_and_paginate(admin: Browser, registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(3):
        await push_image(registry.client, f"team/app{i}", "1", seed=str(i))
    monkeypatch.setattr(audit, "PAGE", 2)
    page = await admin.get("/admin/audit", params={"action": "manifest.push"})
    assert page.text.index("team/app2") < page.text.index("team/app1")
    assert "team/app0" not in page.text
    assert "Older events" in page.text
    older = await admin.get(page.text.split('href="')[-1].split('" rel="next"')[0].replace("&amp;", "&"))
    assert "team/app0" in older.text
    assert "Newest" in older.text
    by_nobody = await admin.get("/admin/audit", params={"actor": "nobody"})
    assert "No events match this filter." in by_nobody.text
    assert (await admin.get("/admin/audit", params={"before": "x"})).status_code == 400

"""The Garbage collection page: a dry run and a run started from it, the schedule saved, the last runs shown."""

from __future__ import annotations

import asyncio

from .conftest import Browser


async def _settled(admin: Browser) -> str:
    """The page once the run finished, after the first load's (which carries the flash message)."""
    first = (await admin.get("/admin/gc")).text
    for _ in range(200):  # runs go on in the background; a bound, not a timing assumption
        page = await admin.get("/admin/gc")
        if "No collection is running." in page.text and ">running<" not in page.text.split('id="gc-runs"')[-1]:
            return first + page.text
        await asyncio.sleep(0.05)
    raise AssertionError("the run did not finish")


async def test_run_dry_run_schedule_and_history(admin: Browser) -> None:
    page = await admin.get("/admin/gc")
    assert page.status_code == 200
    assert "No collection has run yet." in page.text
    assert 'aria-current="page">Garbage collection</a>' in page.text
    dry = await admin.post("/admin/gc/run", {"op": "dry-run", "grace": "0s"})
    assert dry.status_code == 303
    text = await _settled(admin)
    assert "A dry run started (run 1)" in text
    assert "dry run</span>" in text
    run = await admin.post("/admin/gc/run", {"op": "run", "grace": "2h", "untagged": "on"})
    assert run.status_code == 303
    text = await _settled(admin)
    assert "Garbage collection started (run 2)" in text
    assert text.split("</html>")[-2].count(">succeeded<") == 2
    bad = await admin.post("/admin/gc/run", {"op": "run", "grace": "soon"})
    assert bad.status_code == 400
    assert "write it like 90s, 30m, 2h" in bad.text
    saved = await admin.post("/admin/gc/schedule", {"every": "24h", "grace": "3h"})
    assert saved.status_code == 303
    text = (await admin.get("/admin/gc")).text
    assert "Saved: collection runs by itself every 1d." in text
    assert 'id="schedule-every" name="every" value="1d"' in text
    assert 'name="grace" value="3h"' in text


async def test_tag_policies_on_the_page(admin: Browser) -> None:
    await admin.get("/admin/gc")
    saved = await admin.post("/admin/gc/policies", {"pattern": "team/*", "immutable": "on", "keep_last": "3"})
    assert saved.status_code == 303
    page = (await admin.get("/admin/gc")).text
    assert "Saved the tag policy of team/*." in page
    assert "<code>team/*</code>" in page
    bad = await admin.post("/admin/gc/policies", {"pattern": "Team"})
    assert bad.status_code == 400
    assert "is not a repository pattern" in bad.text
    deleted = await admin.post("/admin/gc/policies/delete", {"pattern": "team/*"})
    assert deleted.status_code == 303
    assert "Deleted the tag policy of team/*." in (await admin.get("/admin/gc")).text

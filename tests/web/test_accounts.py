"""Users, organizations, teams, members and grants through the pages, with errors shown on the page."""

from __future__ import annotations

import re

from tests.registry.conftest import Registry, push_image

from .conftest import Browser, browser_of


async def test_create_user_with_a_generated_password_shown_once(admin: Browser, registry: Registry) -> None:
    await admin.get("/admin/users")
    page = await admin.post("/admin/users", {"name": "alice"})
    found = re.search(r'id="new-password" class="code" readonly value="([^"]+)"', page.text)
    assert found is not None
    alice = browser_of(registry)
    async with alice.http:
        assert (await alice.login("alice", found.group(1))).status_code == 303
    assert found.group(1) not in (await admin.get("/admin/users")).text


async def test_errors_show_on_the_page_the_form_came_from(admin: Browser) -> None:
    await admin.get("/admin/users")
    response = await admin.post(
        "/admin/users", {"name": "Not Valid"}, headers={"referer": "https://registry.test/admin/users"}
    )
    assert response.status_code == 303
    page = await admin.get(response.headers["location"])
    assert 'role="alert"' in page.text
    assert "invalid user name" in page.text
    response = await admin.post("/admin/users/admin/delete", headers={"referer": "https://registry.test/admin/users"})
    assert "administrators cannot delete themselves" in (await admin.get(response.headers["location"])).text


async def test_user_flags_and_delete(admin: Browser) -> None:
    await admin.get("/admin/users")
    await admin.post("/admin/users", {"name": "bob", "password": "bob-password-long"})
    page = await admin.get((await admin.post("/admin/users/bob/update", {"change": "make-admin"})).headers["location"])
    assert "bob is now an administrator" in page.text
    page = await admin.get((await admin.post("/admin/users/bob/update", {"change": "deactivate"})).headers["location"])
    assert "deactivated" in page.text
    page = await admin.get((await admin.post("/admin/users/bob/delete")).headers["location"])
    assert "Deleted the user bob." in page.text
    assert ">bob<" not in page.text


async def test_organizations_teams_members(admin: Browser) -> None:
    await admin.get("/admin/organizations")
    assert "No organizations yet" in (await admin.get("/admin/organizations")).text
    await admin.post("/admin/users", {"name": "carol", "password": "carol-password-long"})
    response = await admin.post("/admin/organizations", {"name": "acme"})
    assert response.headers["location"] == "/admin/organizations/acme"
    page = await admin.get("/admin/organizations/acme")
    assert "acme/owners" in page.text
    response = await admin.post("/admin/organizations/acme/teams", {"name": "devs"})
    await admin.get(response.headers["location"])
    response = await admin.post("/admin/organizations/acme/teams/devs/members", {"user": "carol"})
    page = await admin.get(response.headers["location"])
    assert "Added carol to acme/devs." in page.text
    assert "This team has no grants" in page.text
    response = await admin.post("/admin/organizations/acme/teams/devs/members/carol/remove")
    assert "This team has no members yet." in (await admin.get(response.headers["location"])).text
    response = await admin.post("/admin/organizations/acme/teams/devs/delete")
    assert ">acme/devs</a>" not in (await admin.get(response.headers["location"])).text
    response = await admin.post("/admin/organizations/acme/delete")
    assert "Deleted the organization acme" in (await admin.get(response.headers["location"])).text


async def test_grants(admin: Browser) -> None:
    await admin.get("/admin/users")
    await admin.post("/admin/users", {"name": "dave", "password": "dave-password-long"})
    await admin.get("/admin/grants")
    response = await admin.post("/admin/grants", {"target": "acme/*", "role": "read-write", "subject": "dave"})
    page = await admin.get(response.headers["location"])
    assert "Gave read-write on acme/* to the user dave." in page.text
    grant_id = re.search(r'action="/admin/grants/(\d+)/delete"', page.text)
    assert grant_id is not None
    response = await admin.post(f"/admin/grants/{grant_id.group(1)}/delete")
    page = await admin.get(response.headers["location"])
    assert "Removed the grant." in page.text
    assert "No grants yet" in page.text


async def test_admin_pages_refuse_non_admins(admin: Browser, registry: Registry) -> None:
    await admin.get("/admin/users")
    await admin.post("/admin/users", {"name": "erin", "password": "erin-password-long"})
    erin = browser_of(registry)
    async with erin.http:
        await erin.login("erin", "erin-password-long")
        for path in ("/admin/users", "/admin/organizations", "/admin/grants", "/admin/audit", "/settings/storage"):
            response = await erin.get(path)
            assert response.status_code == 403, path
            assert "erin is not an administrator" in response.text
        assert (await erin.post("/admin/organizations", {"name": "evil"})).status_code == 403


async def test_deleting_an_organization_with_repositories_needs_the_checkbox(
    admin: Browser, registry: Registry
) -> None:
    await admin.get("/admin/organizations")
    await admin.post("/admin/organizations", {"name": "acme"})
    await push_image(registry.client, "acme/app", "v1")
    await admin.get("/admin/organizations/acme")
    refused = await admin.post(
        "/admin/organizations/acme/delete", headers={"referer": "https://registry.test/admin/organizations/acme"}
    )
    assert "still owns 1 repository (acme/app)" in (await admin.get(refused.headers["location"])).text
    deleted = await admin.post("/admin/organizations/acme/delete", {"with_repositories": "on"})
    assert (
        "Deleted the organization acme, its teams and repositories."
        in (await admin.get(deleted.headers["location"])).text
    )
    await admin.post(
        "/admin/organizations", {"name": "acme"}, headers={"referer": "https://registry.test/admin/organizations"}
    )
    assert "reserved" in (await admin.get("/admin/organizations")).text

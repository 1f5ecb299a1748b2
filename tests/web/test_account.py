"""The account page: your own password (with the current one) and app tokens; an administrator's for anyone."""

from __future__ import annotations

import re

from tests.registry.conftest import ADMIN_PASSWORD, Registry

from .conftest import Browser, browser_of

BOB = "bob-password-long"
_TOKEN = re.compile(r'id="new-token" class="code" readonly value="([^"]+)"')


async def _bob(admin: Browser, registry: Registry) -> Browser:
    """A browser for the new user bob (log in once it is open)."""
    await admin.get("/admin/users")
    await admin.post("/admin/users", {"name": "bob", "password": BOB})
    return browser_of(registry)


async def test_create_a_token_shown_once_use_it_and_revoke_it(admin: Browser, registry: Registry) -> None:
    bob = await _bob(admin, registry)
    async with bob.http:
        assert (await bob.login("bob", BOB)).status_code == 303
        page = await bob.get("/account")
        assert "Your account" in page.text
        assert "No app tokens yet" in page.text
        created = await bob.post("/account/bob/tokens", {"name": "laptop", "read_only": "on"})
        found = _TOKEN.search(created.text)
        assert found is not None
        secret = found.group(1)
        login = await registry.client.get("/auth/token", auth=("bob", secret))
        assert login.status_code == 200
        page = await bob.get("/account")
        assert secret not in page.text
        assert "laptop" in page.text
        assert "pull only" in page.text
        token_id = re.search(r"/account/bob/tokens/(\w+)/revoke", page.text)
        assert token_id is not None
        revoked = await bob.post(f"/account/bob/tokens/{token_id.group(1)}/revoke")
        assert "Revoked the token" in (await bob.get(revoked.headers["location"])).text
        assert (await registry.client.get("/auth/token", auth=("bob", secret))).status_code == 401


async def test_changing_your_password_needs_the_current_one_and_ends_other_sessions(
    admin: Browser, registry: Registry
) -> None:
    bob = await _bob(admin, registry)
    other = browser_of(registry)
    async with bob.http, other.http:
        await bob.login("bob", BOB)
        await other.login("bob", BOB)
        await bob.get("/account")
        new = "bobs-new-password"
        wrong = {"current_password": "not-it", "new_password": new, "confirm_password": new}
        refused = await bob.post("/account/bob/password", wrong, headers={"referer": "https://registry.test/account"})
        assert "current password is wrong" in (await bob.get(refused.headers["location"])).text
        typo = {"current_password": BOB, "new_password": new, "confirm_password": new + "x"}
        refused = await bob.post("/account/bob/password", typo, headers={"referer": "https://registry.test/account"})
        assert "differ" in (await bob.get(refused.headers["location"])).text
        changed = await bob.post("/account/bob/password", {**typo, "confirm_password": new})
        assert "Your password is changed" in (await bob.get(changed.headers["location"])).text
        assert (await bob.get("/account")).status_code == 200  # this browser goes on
        assert (await other.get("/account")).status_code == 303  # the other session ended
        assert (await registry.client.get("/auth/token", auth=("bob", new))).status_code == 200


async def test_users_manage_only_their_own_account(admin: Browser, registry: Registry) -> None:
    bob = await _bob(admin, registry)
    async with bob.http:
        assert (await bob.login("bob", BOB)).status_code == 303
        assert (await bob.get("/account/admin")).status_code == 403
        await bob.get("/account")
        assert (await bob.post("/account/admin/tokens", {"name": "steal"})).status_code == 403


async def test_administrators_manage_anybodys_account(admin: Browser, registry: Registry) -> None:
    bob = await _bob(admin, registry)
    async with bob.http:
        assert (await bob.login("bob", BOB)).status_code == 303
        page = await admin.get("/account/bob")
        assert "Account of bob" in page.text
        assert "Current password" not in page.text
        created = await admin.post("/account/bob/tokens", {"name": "ci"})
        assert _TOKEN.search(created.text) is not None
        generated = await admin.post("/account/bob/password", {"new_password": "", "confirm_password": ""})
        found = re.search(r'id="new-password" class="code" readonly value="([^"]+)"', generated.text)
        assert found is not None
        assert (await bob.get("/account")).status_code == 303  # bob's sessions ended with the reset
        assert (await registry.client.get("/auth/token", auth=("bob", found.group(1)))).status_code == 200
        assert (await admin.get("/account")).status_code == 200  # the admin's own session is untouched
        own = await admin.get("/account/admin")
        assert "Current password" in own.text
        assert ADMIN_PASSWORD not in own.text

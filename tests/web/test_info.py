"""The home page's "This registry" panel (what `trustyard info` prints): site admins see it; users do not."""

from __future__ import annotations

from tests.registry.conftest import Registry, push_image
from trustyard.services.actor import Actor

from .conftest import Browser, browser_of

PASSWORD = "a-long-enough-password"


async def test_a_site_admin_sees_the_registry_at_a_glance(registry: Registry, admin: Browser) -> None:
    await push_image(registry.client, "acme/app", "v1")

    home = await admin.http.get("/", follow_redirects=True)

    assert home.status_code == 200
    assert 'id="registry-info"' in home.text
    assert "<dt>Holds</dt><dd>1 repositories, 1 tags, 1 manifests" in home.text
    assert "<dt>CA fingerprint</dt>" in home.text
    assert "filesystem (default)" in home.text
    assert "sqlite, revision 0" in home.text
    assert "(this node)" in home.text
    assert "none yet" in home.text


async def test_a_user_sees_nothing_of_it(registry: Registry) -> None:
    await registry.asgi.state.services.users.create(Actor.system(), "alice", PASSWORD)
    await push_image(registry.client, "acme/app", "v1")
    user = browser_of(registry)
    async with user.http:
        await user.login("alice", PASSWORD)
        home = await user.http.get("/", follow_redirects=True)

    assert home.status_code == 200
    assert "<h1>Repositories</h1>" in home.text
    assert "registry-info" not in home.text
    assert "CA fingerprint" not in home.text

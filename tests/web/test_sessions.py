"""Logging in and out, the session cookie's flags, CSRF refusal, and sessions ending with their credential."""

from __future__ import annotations

import httpx

from tests.registry.conftest import ADMIN, Registry
from trustyard.services import Services
from trustyard.services.actor import Actor

from .conftest import Browser, browser_of


async def test_pages_need_a_login_and_come_back_after_it(browser: Browser) -> None:
    response = await browser.get("/admin/users")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/admin/users"
    await browser.get("/login?next=/admin/users")
    response = await browser.post("/login", {"username": "admin", "password": ADMIN[1], "next": "/admin/users"})
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/users"


async def test_login_sets_a_hardened_cookie(browser: Browser) -> None:
    response = await browser.login()
    cookie = response.headers["set-cookie"].lower()
    for flag in ("httponly", "secure", "samesite=lax", "path=/"):
        assert flag in cookie
    page = await browser.get("/repositories")
    assert "Signed in as <strong>admin</strong>" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


async def test_wrong_password_says_so_and_is_audited(browser: Browser, admin_browser: Browser) -> None:
    await browser.get("/login")
    response = await browser.post("/login", {"username": "admin", "password": "not the password"})
    assert response.status_code == 401
    assert "Wrong user name or password" in response.text
    audit = await admin_browser.get("/admin/audit", params={"action": "login.failed"})
    assert "login.failed" in audit.text


async def test_a_post_without_the_csrf_token_is_refused(admin: Browser) -> None:
    response = await admin.http.post("/admin/organizations", data={"name": "acme"})
    assert response.status_code == 403
    assert "did not come from this site" in response.text
    response = await admin.http.post("/admin/organizations", data={"name": "acme", "csrf": "forged"})
    assert response.status_code == 403
    assert "acme" not in (await admin.get("/admin/organizations")).text.split("All organizations")[1]


async def test_login_itself_needs_the_token(browser: Browser) -> None:
    response = await browser.http.post("/login", data={"username": "admin", "password": ADMIN[1]})
    assert response.status_code == 403


async def test_logout_ends_the_session(admin: Browser) -> None:
    response = await admin.post("/logout")
    assert response.headers["location"] == "/login"
    assert (await admin.get("/repositories")).status_code == 303


async def test_a_tampered_cookie_is_ignored(registry: Registry) -> None:
    web = browser_of(registry)
    async with web.http:
        await web.login()
        value = web.http.cookies["trustyard_session"]
        web.http.cookies.clear()
        web.http.cookies.set("trustyard_session", value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
        assert (await web.get("/repositories")).status_code == 303


async def test_deactivating_or_resetting_the_password_ends_sessions(admin: Browser, registry: Registry) -> None:
    await admin.post("/admin/users", {"name": "bob", "password": "bob-password-long"})
    bob = browser_of(registry)
    async with bob.http:
        assert (await bob.login("bob", "bob-password-long")).status_code == 303
        assert (await bob.get("/repositories")).status_code == 200
        await admin.get("/admin/users")
        await admin.post("/admin/users/bob/password")
        assert (await bob.get("/repositories")).status_code == 303
        new = browser_of(registry)
        async with new.http:
            await new.login("bob", "bob-password-long")
            assert (await new.get("/repositories")).status_code == 303  # the old password no longer works


async def test_unknown_pages_are_pages(browser: Browser) -> None:
    response = await browser.get("/no/such/page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    api = await browser.http.get("/v2/no/such/thing/x")
    assert api.headers["content-type"].startswith("application/json")


async def test_open_redirects_are_refused(browser: Browser) -> None:
    await browser.get("/login")
    response = await browser.post("/login", {"username": "admin", "password": ADMIN[1], "next": "//evil.example/"})
    assert response.headers["location"] == "/repositories"


async def test_static_files(browser: Browser) -> None:
    css = await browser.http.get("/static/style.css")
    assert css.status_code == 200
    assert isinstance(css, httpx.Response)
    assert ":focus-visible" in css.text


async def test_logout_ends_the_session_on_the_server(registry: Registry) -> None:
    """Today a cookie copied before logging out keeps working for 12 hours."""
    web = browser_of(registry)
    async with web.http:
        await web.login()
        copied = web.http.cookies["trustyard_session"]
        await web.post("/logout")
    thief = browser_of(registry)
    async with thief.http:
        thief.http.cookies.set("trustyard_session", copied)
        assert (await thief.get("/repositories")).status_code == 303


async def test_deleting_a_user_ends_their_sessions(admin: Browser, registry: Registry) -> None:
    await admin.post("/admin/users", {"name": "bob", "password": "bob-password-long"})
    bob = browser_of(registry)
    async with bob.http:
        await bob.login("bob", "bob-password-long")
        assert (await bob.get("/repositories")).status_code == 200
        await admin.get("/admin/users")
        await admin.post("/admin/users/bob/delete")
        assert (await bob.get("/repositories")).status_code == 303


async def test_an_app_token_does_not_open_a_web_session(browser: Browser, registry: Registry) -> None:
    """Today an app token logs in to the web UI, where the account itself is managed."""
    services: Services = registry.asgi.state.services
    token = await services.app_tokens.create(Actor.system(), "admin", "ci")
    await browser.get("/login")
    response = await browser.post("/login", {"username": "admin", "password": token.secret})
    assert response.status_code == 401
    assert "app tokens work for docker login" in response.text
    assert (await browser.get("/repositories")).status_code == 303


async def test_password_guessing_slows_the_login_page_down(browser: Browser, registry: Registry) -> None:
    services: Services = registry.asgi.state.services
    for _ in range(10):  # the in-process browser's address, as httpx's ASGI transport gives it
        await services.audit.record(Actor.claimant("admin", "127.0.0.1"), "login.failed", "admin")
    await browser.get("/login")
    response = await browser.post("/login", {"username": "admin", "password": ADMIN[1]})
    assert response.status_code == 429
    assert "Too many failed logins from this address; try again in" in response.text

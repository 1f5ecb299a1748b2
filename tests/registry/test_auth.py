"""Token auth on /v2: the challenge, the token endpoint (GET, OAuth2 POST, refresh), and the authorization
matrix: each kind of caller by every /v2 operation, with the status each must get, with a Bearer token and
with the same credentials sent as HTTP Basic (tests/registry/test_basic_auth.py has the rest of Basic)."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from trustyard.auth.scopes import Scope
from trustyard.services import Services
from trustyard.services.actor import Actor

from .conftest import (
    ADMIN,
    ADMIN_PASSWORD,
    BASE_URL,
    Registry,
    client_as,
    digest_of,
    error_code,
    image_manifest,
    push_blob,
    push_image,
    running,
)

REPO = "acme/app"
PASSWORD = "a-long-enough-password"  # every test user's


@dataclass
class World:
    """A registry with users of every kind around ``acme/app`` (pushed by admin)."""

    registry: Registry
    secrets: dict[str, str]  # login secret per user name (password or app token)
    revoked: str  # a revoked app token of writer

    @property
    def services(self) -> Services:
        found: Services = self.registry.asgi.state.services
        return found


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with populated(tmp_path / "data") as built:
        yield built


@pytest.fixture
async def world_with_refresh(tmp_path: Path) -> AsyncIterator[World]:
    """The same world on a registry that hands out refresh tokens (``refresh_tokens: true``)."""
    async with populated(tmp_path / "data", refresh_tokens=True) as built:
        yield built


@asynccontextmanager
async def populated(data_dir: Path, **settings: Any) -> AsyncIterator[World]:
    async with running(data_dir, **settings) as registry:
        services: Services = registry.asgi.state.services
        system = Actor.system()
        for name in ("reader", "writer", "owner", "outsider"):
            await services.users.create(system, name, PASSWORD)
        await services.grants.put(system, REPO, "read", user="reader")
        await services.grants.put(system, REPO, "read-write", user="writer")
        await services.grants.put(system, REPO, "admin", user="owner")
        await services.organizations.create(system, "other")
        await services.teams.create(system, "other", "devs")
        await services.teams.add_member(system, "other", "devs", "outsider")
        await services.grants.put(system, "other/*", "read-write", team="other/devs")
        token = await services.app_tokens.create(system, "writer", "ci")
        revoked = await services.app_tokens.create(system, "writer", "old")
        await services.app_tokens.revoke(system, "writer", revoked.row.id)
        await push_image(registry.client, REPO, "v1")
        await push_image(registry.client, "other/thing", "v1")
        secrets = {"admin": ADMIN_PASSWORD, "reader": PASSWORD, "writer": token.secret, "owner": PASSWORD}
        secrets["outsider"] = PASSWORD
        yield World(registry, secrets, revoked.secret)


async def token_for(client: httpx.AsyncClient, who: tuple[str, str] | None, *scopes: str) -> httpx.Response:
    return await client.get("/auth/token", params=[("service", "trustyard"), *(("scope", s) for s in scopes)], auth=who)


ALL = f"repository:{REPO}:pull,push,delete"


async def bearer(world: World, caller: str) -> dict[str, str]:
    """The Authorization a client of kind ``caller`` ends up sending for everything on acme/app."""
    client = world.registry.client
    if caller == "anonymous":
        return {}
    if caller == "expired":
        token, _ = world.services.tokens.authority.issue_access(
            "admin", [Scope("repository", REPO, frozenset({"pull", "push", "delete"}))], now=time.time() - 3600
        )
        return {"Authorization": f"Bearer {token}"}
    if caller == "revoked":
        response = await token_for(client, ("writer", world.revoked), ALL)
        assert response.status_code == 401
        return {}  # no token to be had
    response = await token_for(client, (caller, world.secrets[caller]), ALL, "registry:catalog:*")
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def basic(world: World, caller: str) -> dict[str, str]:
    """The same caller sending its credentials as HTTP Basic on every request (``curl -u``, CI scripts).
    Wrong and revoked Basic credentials are in test_basic_auth.py: a row of them would hit the login limit."""
    credentials = f"{caller}:{world.secrets[caller]}".encode()
    return {"Authorization": "Basic " + base64.b64encode(credentials).decode()}


# status per caller:  anonymous reader writer owner admin outsider revoked expired
CALLERS = ("anonymous", "reader", "writer", "owner", "admin", "outsider", "revoked", "expired")
PULL = (401, 200, 200, 200, 200, 401, 401, 401)
PUSH = (401, 401, None, None, None, 401, 401, 401)  # None: the operation's success status
DELETE = (401, 401, 401, None, None, 401, 401, 401)


@pytest.mark.parametrize(
    ("caller", "scheme"),
    [(caller, "bearer") for caller in CALLERS]
    + [(caller, "basic") for caller in CALLERS if caller not in ("anonymous", "revoked", "expired")],
)
async def test_authorization_matrix(world: World, caller: str, scheme: str) -> None:
    client = world.registry.client
    headers = await bearer(world, caller) if scheme == "bearer" else basic(world, caller)
    column = CALLERS.index(caller)
    manifest = (await client.get(f"/v2/{REPO}/manifests/v1")).content
    config_digest = httpx.Response(200, content=manifest).json()["config"]["digest"]
    spare = await push_blob(client, REPO, f"spare {caller}".encode())  # unreferenced: deletable
    session = (await client.post(f"/v2/{REPO}/blobs/uploads/")).headers["location"]
    new = f"new blob of {caller}".encode()
    raw = httpx.AsyncClient(transport=httpx.ASGITransport(app=world.registry.asgi), base_url=BASE_URL)

    async def status(method: str, url: str, **kwargs: object) -> int:
        response = await raw.request(method, url, headers={**headers, **kwargs.pop("headers", {})}, **kwargs)  # type: ignore[arg-type]
        if response.status_code == 401:
            assert response.headers["www-authenticate"].startswith(f'Bearer realm="{BASE_URL}/auth/token"')
        return response.status_code

    def expect(row: tuple[int | None, ...], success: int) -> int:
        return row[column] or success

    checks = {
        "GET manifest": (await status("GET", f"/v2/{REPO}/manifests/v1"), expect(PULL, 200)),
        "HEAD manifest": (await status("HEAD", f"/v2/{REPO}/manifests/v1"), expect(PULL, 200)),
        "GET blob": (await status("GET", f"/v2/{REPO}/blobs/{config_digest}"), expect(PULL, 200)),
        "HEAD blob": (await status("HEAD", f"/v2/{REPO}/blobs/{config_digest}"), expect(PULL, 200)),
        "GET tags": (await status("GET", f"/v2/{REPO}/tags/list"), expect(PULL, 200)),
        "GET referrers": (await status("GET", f"/v2/{REPO}/referrers/{digest_of(manifest)}"), expect(PULL, 200)),
        "POST upload": (await status("POST", f"/v2/{REPO}/blobs/uploads/"), expect(PUSH, 202)),
        "GET upload": (await status("GET", session), expect(PUSH, 204)),
        "PATCH upload": (await status("PATCH", session, content=new[:4]), expect(PUSH, 202)),
        "PUT upload": (
            await status("PUT", session, params={"digest": digest_of(new[:4])}),
            expect(PUSH, 201),
        ),
        "POST monolithic": (
            await status("POST", f"/v2/{REPO}/blobs/uploads/", params={"digest": digest_of(new)}, content=new),
            expect(PUSH, 201),
        ),
        "PUT manifest": (
            await status(
                "PUT",
                f"/v2/{REPO}/manifests/{caller}",
                content=manifest,
                headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
            ),
            expect(PUSH, 201),
        ),
        "DELETE blob": (await status("DELETE", f"/v2/{REPO}/blobs/{spare}"), expect(DELETE, 202)),
        "DELETE manifest": (await status("DELETE", f"/v2/{REPO}/manifests/{digest_of(manifest)}"), expect(DELETE, 202)),
        "GET /v2/": (await status("GET", "/v2/"), 401 if caller in ("anonymous", "revoked", "expired") else 200),
        "GET catalog": (
            await status("GET", "/v2/_catalog"),
            401 if caller in ("anonymous", "revoked", "expired") else 200,
        ),
    }
    await raw.aclose()
    wrong = {op: got for op, (got, want) in checks.items() if got != want}
    assert not wrong, f"{caller}: got {wrong}; expected { ({op: want for op, (_, want) in checks.items()}) }"


async def test_challenge_names_realm_service_and_scope(world: World) -> None:
    plain = client_as(world.registry)
    response = await plain.get("/v2/")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == f'Bearer realm="{BASE_URL}/auth/token",service="trustyard"'
    pull = await plain.get(f"/v2/{REPO}/manifests/v1")
    assert pull.status_code == 401
    assert error_code(pull) == "UNAUTHORIZED"
    assert f'scope="repository:{REPO}:pull"' in pull.headers["www-authenticate"]
    # A reader's token covers pull only; a push gets 401 insufficient_scope with the scope to ask for.
    token = (await token_for(world.registry.client, ("reader", PASSWORD), ALL)).json()["token"]
    push = await plain.post(f"/v2/{REPO}/blobs/uploads/", headers={"Authorization": f"Bearer {token}"})
    assert push.status_code == 401
    assert error_code(push) == "DENIED"
    assert 'error="insufficient_scope"' in push.headers["www-authenticate"]
    assert f'scope="repository:{REPO}:push"' in push.headers["www-authenticate"]
    await plain.aclose()


async def test_granted_scopes_are_requested_and_allowed(world: World) -> None:
    client = world.registry.client
    response = await token_for(client, ("reader", PASSWORD), ALL, "repository:other/thing:pull", "repository:x:fly")
    assert response.status_code == 200
    body = response.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == 300
    assert body["issued_at"].endswith("Z")
    claims = world.services.tokens.authority.verify_access(body["token"])
    assert claims.access == {("repository", REPO): {"pull"}}
    assert response.headers["cache-control"] == "no-store"


async def test_anonymous_tokens_pull_public_repositories_only(world: World) -> None:
    client = world.registry.client
    await world.services.repositories.set_public(Actor.system(), _name(REPO), True)
    response = await token_for(client, None, ALL, "repository:other/thing:pull")
    claims = world.services.tokens.authority.verify_access(response.json()["token"])
    assert claims.subject == ""
    assert claims.access == {("repository", REPO): {"pull"}}
    anonymous = client_as(world.registry, None)
    anonymous.auth = _anonymous_flow()
    assert (await anonymous.get(f"/v2/{REPO}/manifests/v1")).status_code == 200
    assert (await anonymous.get("/v2/other/thing/manifests/v1")).status_code == 401
    refused = await anonymous.post(f"/v2/{REPO}/blobs/uploads/")
    assert refused.status_code == 401
    # The anonymous token is valid, it just does not cover a push: said so, not "invalid_token", which sent
    # helm and oras looking for a fault in their token instead of at their login.
    challenge = refused.headers["www-authenticate"]
    assert f'scope="repository:{REPO}:push"' in challenge
    assert 'error="insufficient_scope"' in challenge
    assert refused.json()["errors"][0]["code"] == "UNAUTHORIZED"
    await anonymous.aclose()


def _anonymous_flow() -> httpx.Auth:
    from ..tokenauth import DockerTokenAuth

    return DockerTokenAuth(None, None, f"{BASE_URL}/auth/token")


def _name(text: str):  # type: ignore[no-untyped-def]
    from trustyard.oci.names import RepositoryName

    return RepositoryName.parse(text)


async def test_catalog_lists_only_what_the_caller_may_pull(world: World) -> None:
    for who, expected in [("reader", [REPO]), ("outsider", ["other/thing"]), ("admin", [REPO, "other/thing"])]:
        client = client_as(world.registry, who, world.secrets[who])
        response = await client.get("/v2/_catalog")
        assert response.status_code == 200, response.text
        assert sorted(response.json()["repositories"]) == sorted(expected), who
        await client.aclose()


async def test_catalog_pages_fill_through_filtered_names_and_follow_grant_changes(world: World) -> None:
    """The caller's grants are read once per request, then names are filtered page by page: a page of ``n``
    is filled past repositories the caller may not pull, public repositories show to everyone, and a grant
    or deactivation shows at the next request (no cached permission)."""
    client = world.registry.client
    for name in ("a/hidden", "b/hidden", "other/x", "pub/open", "c/hidden", "other/y"):
        await push_image(client, name, "v1")
    await world.services.repositories.set_public(Actor.system(), _name("pub/open"), True)

    async def pages(who: str, n: int) -> list[list[str]]:
        caller = client_as(world.registry, who, world.secrets[who])
        seen, link = [], f"/v2/_catalog?n={n}"
        while link:
            response = await caller.get(link)
            assert response.status_code == 200, response.text
            seen.append(response.json()["repositories"])
            header = response.headers.get("link", "")
            link = header[1 : header.index(">")] if header else ""
        await caller.aclose()
        return seen

    # outsider: other/* through the team "other/devs", and the public repository; 2 per page.
    assert await pages("outsider", 2) == [["other/thing", "other/x"], ["other/y", "pub/open"]]
    await world.services.grants.put(Actor.system(), "c/hidden", "read", user="outsider")
    assert await pages("outsider", 10) == [["c/hidden", "other/thing", "other/x", "other/y", "pub/open"]]
    await world.services.users.update(Actor.system(), "outsider", active=False)
    deactivated = client_as(world.registry, "outsider", PASSWORD)
    assert (await deactivated.get("/v2/_catalog")).status_code == 401  # a deactivated user gets no token at all
    await deactivated.aclose()


async def test_mount_needs_pull_on_the_source(world: World) -> None:
    client = client_as(world.registry, "outsider", PASSWORD)
    manifest = (await world.registry.client.get(f"/v2/{REPO}/manifests/v1")).json()
    layer = manifest["layers"][0]["digest"]
    refused = await client.post("/v2/other/copy/blobs/uploads/", params={"mount": layer, "from": REPO})
    assert refused.status_code == 202  # no pull on acme/app: an ordinary upload session instead of a mount
    await world.services.grants.put(Actor.system(), REPO, "read", team="other/devs")
    client.auth = type(client.auth)("outsider", PASSWORD, f"{BASE_URL}/auth/token")  # type: ignore[call-arg]
    mounted = await client.post("/v2/other/copy/blobs/uploads/", params={"mount": layer, "from": REPO})
    assert mounted.status_code == 201
    await client.aclose()


async def test_no_refresh_tokens_by_default(world: World) -> None:
    """docker login asks for one (offline_token=true) and would store it as an identity token, which podman,
    buildah and skopeo refuse: by default the answer has none, as Distribution's and Harbor's have none."""
    client = world.registry.client
    got = await client.get(
        "/auth/token", params={"offline_token": "true", "service": "trustyard"}, auth=("reader", PASSWORD)
    )
    assert got.status_code == 200, got.text
    assert "refresh_token" not in got.json()
    form = {"grant_type": "password", "username": "reader", "password": PASSWORD, "access_type": "offline"}
    posted = await client.post("/auth/token", data=form)
    assert posted.status_code == 200, posted.text
    assert "refresh_token" not in posted.json()


async def test_turning_refresh_tokens_off_revokes_them(tmp_path: Path) -> None:
    params = {"offline_token": "true", "service": "trustyard"}
    async with running(tmp_path / "data", refresh_tokens=True) as registry:
        refresh = (await registry.client.get("/auth/token", params=params, auth=ADMIN)).json()["refresh_token"]
    async with running(tmp_path / "data") as registry:
        refused = await registry.client.post(
            "/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh}
        )
    assert refused.status_code == 401
    assert "refresh tokens are turned off" in refused.json()["errors"][0]["message"]


async def test_oauth2_post_and_refresh_tokens(world_with_refresh: World) -> None:
    world = world_with_refresh
    client = world.registry.client
    form = {
        "grant_type": "password",
        "username": "writer",
        "password": world.secrets["writer"],
        "service": "trustyard",
        "scope": f"repository:{REPO}:pull,push",
        "access_type": "offline",
        "client_id": "containerd",
    }
    response = await client.post("/auth/token", data=form)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == f"repository:{REPO}:pull,push"
    refresh = body["refresh_token"]
    again = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh, "service": "trustyard", "scope": ALL},
    )
    assert again.status_code == 200, again.text
    claims = world.services.tokens.authority.verify_access(again.json()["access_token"])
    assert claims.access == {("repository", REPO): {"pull", "push"}}
    # The app token behind it is revoked: so is the refresh token.
    token_id = world.secrets["writer"].split("_")[1]
    await world.services.app_tokens.revoke(Actor.system(), "writer", token_id)
    revoked = await client.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh})
    assert revoked.status_code == 401


async def test_a_password_change_revokes_refresh_tokens(world_with_refresh: World) -> None:
    world = world_with_refresh
    client = world.registry.client
    got = await client.get(
        "/auth/token", params={"offline_token": "true", "service": "trustyard"}, auth=("reader", PASSWORD)
    )
    refresh = got.json()["refresh_token"]
    ok = await client.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh})
    assert ok.status_code == 200
    await world.services.users.set_password(Actor.system(), "reader", "another-long-password")
    gone = await client.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh})
    assert gone.status_code == 401


async def test_wrong_service_bad_grant_and_malformed_basic(world: World) -> None:
    client = world.registry.client
    assert (await client.get("/auth/token", params={"service": "elsewhere"}, auth=ADMIN)).status_code == 401
    assert (await client.post("/auth/token", data={"grant_type": "client_credentials"})).status_code == 400
    bad = await client.get("/auth/token", headers={"Authorization": "Basic %%%"})
    assert bad.status_code == 401
    assert bad.headers["www-authenticate"] == 'Basic realm="trustyard"'
    plain = client_as(world.registry)
    forged = await plain.get("/v2/", headers={"Authorization": "Bearer e30.e30.e30"})
    assert forged.status_code == 401
    assert 'error="invalid_token"' in forged.headers["www-authenticate"]
    # A wrong Basic password on /v2 is a 401 that still offers tokens.
    wrong = await plain.get("/v2/", headers={"Authorization": "Basic " + base64.b64encode(b"admin:x").decode()})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"].startswith(f'Bearer realm="{BASE_URL}/auth/token"')
    await plain.aclose()


ATTACKER, VICTIM = "203.0.113.9", "198.51.100.7"


def client_from(world: World, address: str, **headers: str) -> httpx.AsyncClient:
    """A client of the registry whose connection comes from ``address``."""
    transport = httpx.ASGITransport(app=world.registry.asgi, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers)


async def guessed(world: World, user: str, address: str, times: int) -> None:
    """``times`` more failed logins of ``user`` from ``address``, as the audit log (which the slowdown counts)
    records them: faster than guessing for real, and the delay they earn does not run out during the test."""
    for _ in range(times):
        await world.services.audit.record(Actor.claimant(user, address), "login.failed", user)


async def test_password_guessing_slows_only_the_guesser(world: World) -> None:
    """Today ten bad guesses from anywhere lock the account for 15 minutes everywhere, app tokens included."""
    writer_token = world.secrets["writer"]
    async with client_from(world, ATTACKER) as attacker, client_from(world, VICTIM) as victim:
        for _ in range(5):  # a few mistakes cost nothing
            assert (await token_for(attacker, ("writer", "guess"))).status_code == 401
        await guessed(world, "writer", ATTACKER, 5)
        slowed = await token_for(attacker, ("writer", "another-guess"))
        assert slowed.status_code == 429
        assert 0 < int(slowed.headers["retry-after"]) <= 300
        assert error_code(slowed) == "TOOMANYREQUESTS"
        admin_api = await attacker.get("/api/v1/me", auth=("writer", "guess"))
        assert admin_api.status_code == 429
        assert "retry-after" in admin_api.headers
        # The owner, from their own address, is not held up, with the password or on the admin API ...
        assert (await token_for(victim, ("writer", PASSWORD))).status_code == 200
        assert (await victim.get("/api/v1/me", auth=("writer", PASSWORD))).status_code == 200
        # ... and an app token is never slowed down, even from the guesser's address: it cannot be guessed.
        assert (await token_for(attacker, ("writer", writer_token), ALL)).status_code == 200
    events = await world.services.audit.events(Actor.system(), action="login.failed")
    assert {(e.target, e.source) for e in events} == {("writer", ATTACKER)}


async def test_spraying_many_accounts_from_one_address_is_slowed(world: World) -> None:
    async with client_from(world, ATTACKER) as attacker, client_from(world, VICTIM) as victim:
        await guessed(world, "someone", ATTACKER, 60)
        assert (await token_for(attacker, ("owner", "guess"))).status_code == 429
        assert (await token_for(victim, ("owner", PASSWORD))).status_code == 200


async def test_the_client_address_comes_from_trusted_proxies_only(tmp_path: Path) -> None:
    async with running(tmp_path / "data", trusted_proxies=["10.0.0.0/8"]) as registry:
        world = World(registry, {}, "")
        behind = {"X-Forwarded-For": f"{ATTACKER}, 10.1.2.3"}  # the client, then an inner proxy
        async with client_from(world, "10.0.0.1", **behind) as proxied, client_from(world, VICTIM, **behind) as liar:
            await token_for(proxied, ("admin", "guess"))
            await token_for(liar, ("admin", "guess"))  # not a proxy of ours: its header is ignored
        events = await world.services.audit.events(Actor.system(), action="login.failed")
        assert sorted(e.source or "" for e in events) == sorted([ATTACKER, VICTIM])


async def test_no_secret_in_logs_bodies_or_audit(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = world.registry.client
    bodies = []
    bodies.append((await token_for(client, ("writer", world.secrets["writer"] + "x"), ALL)).text)
    bodies.append((await token_for(client, ("reader", "wrong-" + PASSWORD), ALL)).text)
    bodies.append(
        (
            await client.post(
                "/auth/token", data={"grant_type": "password", "username": "owner", "password": "nope-" + PASSWORD}
            )
        ).text
    )
    bodies.append((await token_for(client, ("writer", world.secrets["writer"]), ALL)).text)
    events = await world.services.audit.events(Actor.system(), limit=1000)
    haystack = caplog.text + "".join(bodies[:3]) + repr(events)
    for secret in (PASSWORD, world.secrets["writer"], world.revoked, ADMIN_PASSWORD):
        assert secret not in haystack
    assert "incorrect user name, password or token" in bodies[0]


async def test_ca_and_jwks_are_public(world: World) -> None:
    plain = client_as(world.registry)
    ca = await plain.get("/ca")
    assert ca.status_code == 200
    assert ca.text.startswith("-----BEGIN CERTIFICATE-----")
    assert ca.content == (world.registry.data_dir / "tls" / "ca.crt").read_bytes()
    keys = (await plain.get("/auth/jwks")).json()["keys"]
    assert [k["kid"] for k in keys] == [world.services.tokens.authority.key.kid]
    assert "d" not in keys[0]  # the public half only
    await plain.aclose()


async def test_audit_records_pushes_and_deletes(world: World) -> None:
    client = world.registry.client
    manifest = image_manifest(b"{}", [])
    await push_blob(client, REPO, b"{}")
    assert (
        await client.put(
            f"/v2/{REPO}/manifests/audited",
            content=manifest,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
    ).status_code == 201
    assert (await client.delete(f"/v2/{REPO}/manifests/audited")).status_code == 202
    events = await world.services.audit.events(Actor.system(), limit=10)
    actions = [(e.action, e.actor, e.target) for e in events[:2]]
    assert actions == [("manifest.delete", "admin", REPO), ("manifest.push", "admin", REPO)]
    assert events[1].detail["tags"] == ["audited"]

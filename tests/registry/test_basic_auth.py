"""HTTP Basic on /v2/ (``curl -u``, CI scripts, oras-py, python-dxf) and cross-repository mounts by a token
scoped to the destination only.

Basic carries what a token for the same account would: grants, teams, public repositories. Verified
credentials are cached per worker for ``basic_auth_cache_ttl`` seconds; failures are failed logins, counted
and limited as at the token endpoint.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from trustyard.auth import passwords
from trustyard.oci.names import RepositoryName
from trustyard.services import Services
from trustyard.services.actor import Actor

from .conftest import (
    BASE_URL,
    Registry,
    digest_of,
    error_code,
    push_blob,
    push_image,
    running,
)

PASSWORD = "a-long-enough-password"
CHALLENGE = f'Bearer realm="{BASE_URL}/auth/token",service="trustyard"'


@dataclass
class World:
    """alice owns ``alice/*`` and has an app token; bob owns ``bob/*``, is in acme/devs (read-write on
    ``acme/*``) and may read ``shared/src``; carol owns ``carol/*`` only. admin pushed ``shared/src``."""

    registry: Registry
    token: str  # alice's app token
    token_id: str

    @property
    def services(self) -> Services:
        found: Services = self.registry.asgi.state.services
        return found

    def client(self, username: str | None = None, secret: str = PASSWORD) -> httpx.AsyncClient:
        """A client sending ``username:secret`` as HTTP Basic on every request, as ``curl -u`` does."""
        transport = httpx.ASGITransport(app=self.registry.asgi)
        auth = httpx.BasicAuth(username, secret) if username else None
        return httpx.AsyncClient(transport=transport, base_url=BASE_URL, auth=auth)


async def make_world(registry: Registry) -> World:
    services: Services = registry.asgi.state.services
    system = Actor.system()
    for name in ("alice", "bob", "carol"):
        await services.users.create(system, name, PASSWORD)
    await services.organizations.create(system, "acme")
    await services.teams.create(system, "acme", "devs")
    await services.teams.add_member(system, "acme", "devs", "bob")
    await services.grants.put(system, "acme/*", "read-write", team="acme/devs")
    await services.grants.put(system, "shared/src", "read", user="bob")
    created = await services.app_tokens.create(system, "alice", "ci")
    await push_blob(registry.client, "shared/src", b"a layer in shared/src")
    return World(registry, created.secret, created.row.id)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with running(tmp_path / "data") as registry:
        yield await make_world(registry)


def counting_password_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every argon2 verification from now on appends to the returned list."""
    calls: list[str] = []
    verify = passwords.verify_password

    def counted(stored_hash: str | None, password: str) -> bool:
        calls.append("verify")
        return verify(stored_hash, password)

    monkeypatch.setattr(passwords, "verify_password", counted)
    return calls


# Basic on /v2/ -----------------------------------------------------------------------------------------


async def test_push_and_pull_with_basic(world: World) -> None:
    async with world.client("alice") as client:
        assert (await client.get("/v2/")).status_code == 200
        image = await push_image(client, "alice/app", "v1")
        manifest = await client.get("/v2/alice/app/manifests/v1", headers={"Accept": image.media_type})
        assert manifest.status_code == 200, manifest.text
        assert manifest.headers["docker-content-digest"] == image.digest == digest_of(manifest.content)
        for blob in (image.config, *image.layers):
            pulled = await client.get(f"/v2/alice/app/blobs/{digest_of(blob)}")
            assert pulled.status_code == 200
            assert digest_of(pulled.content) == pulled.headers["docker-content-digest"] == digest_of(blob)
        assert (await client.get("/v2/alice/app/tags/list")).json() == {"name": "alice/app", "tags": ["v1"]}
        assert (await client.get("/v2/_catalog")).json()["repositories"] == ["alice/app"]


async def test_wrong_password_is_401_with_the_bearer_challenge(world: World) -> None:
    async with world.client("alice", "wrong-" + PASSWORD) as client:
        for response in (await client.get("/v2/"), await client.get("/v2/alice/app/tags/list")):
            assert response.status_code == 401
            assert response.headers["www-authenticate"].startswith(CHALLENGE)
            assert error_code(response) == "UNAUTHORIZED"
    async with world.client("nobody") as client:  # an unknown user: the same answer
        assert (await client.get("/v2/")).status_code == 401
    events = await world.services.audit.events(Actor.system(), action="login.failed")
    assert sorted(e.target for e in events) == ["alice", "alice", "nobody"]


async def test_malformed_basic_is_401(world: World) -> None:
    async with world.client() as client:
        for header in ("Basic %%%", "Basic " + "YWxpY2U=", "Basic"):  # not base64; no colon; nothing
            response = await client.get("/v2/", headers={"Authorization": header})
            assert response.status_code == 401, header
            assert response.headers["www-authenticate"].startswith(CHALLENGE)


async def test_an_app_token_works_as_the_password(world: World) -> None:
    async with world.client("alice", world.token) as client:
        digest = await push_blob(client, "alice/tools", b"pushed with an app token")
        assert (await client.head(f"/v2/alice/tools/blobs/{digest}")).status_code == 200
    async with world.client("bob", world.token) as client:  # alice's token is not bob's password
        assert (await client.get("/v2/")).status_code == 401


async def test_verified_credentials_are_cached(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    checks = counting_password_checks(monkeypatch)
    async with world.client("alice") as client:
        for _ in range(5):
            assert (await client.get("/v2/")).status_code == 200
        await push_blob(client, "alice/app", b"several requests, one verification")
    assert checks == ["verify"]
    async with world.client("alice", "wrong-" + PASSWORD) as client:  # failures are never cached
        for _ in range(2):
            assert (await client.get("/v2/")).status_code == 401
    assert len(checks) == 3


async def test_revocation_takes_effect_within_the_cache_ttl(tmp_path: Path) -> None:
    # A cache that outlives the revocation keeps the credentials working until it ends (at most the TTL) ...
    async with running(tmp_path / "cached", basic_auth_cache_ttl=300) as registry:
        world = await make_world(registry)
        async with world.client("alice", world.token) as client:
            assert (await client.get("/v2/")).status_code == 200
            await world.services.app_tokens.revoke(Actor.system(), "alice", world.token_id)
            assert (await client.get("/v2/")).status_code == 200
    # ... and once it has ended (a TTL of 0: every request is checked again) the revoked token is refused.
    async with running(tmp_path / "uncached", basic_auth_cache_ttl=0) as registry:
        world = await make_world(registry)
        async with world.client("alice", world.token) as client:
            assert (await client.get("/v2/")).status_code == 200
            await world.services.app_tokens.revoke(Actor.system(), "alice", world.token_id)
            refused = await client.get("/v2/")
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"].startswith(CHALLENGE)
            await world.services.users.set_password(Actor.system(), "alice", "a-new-long-password")
        async with world.client("alice") as client:
            assert (await client.get("/v2/")).status_code == 401


async def test_failed_basic_logins_are_slowed_with_the_token_endpoint(world: World) -> None:
    async with world.client("alice", "guess-" + PASSWORD) as client:
        for _ in range(5):  # a few mistakes cost nothing
            assert (await client.get("/v2/")).status_code == 401
    for _ in range(5):  # five more from the same address, as the audit log records them
        await world.services.audit.record(Actor.claimant("alice", "127.0.0.1"), "login.failed", "alice")
    async with world.client("alice") as client:  # this address must now wait, even with the right password
        limited = await client.get("/v2/")
        assert limited.status_code == 429
        assert error_code(limited) == "TOOMANYREQUESTS"
        assert int(limited.headers["retry-after"]) > 0
    token = await world.registry.client.get("/auth/token", params={"service": "trustyard"}, auth=("alice", PASSWORD))
    assert token.status_code == 429  # one limiter for both doors
    async with world.client("alice", world.token) as client:  # app tokens cannot be guessed: never slowed
        assert (await client.get("/v2/")).status_code == 200
    async with world.client("bob") as client:
        assert (await client.get("/v2/")).status_code == 200


async def test_basic_carries_what_a_token_would(world: World) -> None:
    async with world.client("alice") as alice:
        await push_image(alice, "alice/public", "v1")
        await push_image(alice, "alice/private", "v1")
    await world.services.repositories.set_public(Actor.system(), RepositoryName.parse("alice/public"), True)
    async with world.client("bob") as bob:
        assert (await bob.get("/v2/alice/public/manifests/v1")).status_code == 200  # public: anyone pulls
        private = await bob.get("/v2/alice/private/manifests/v1")
        assert private.status_code == 401
        assert 'scope="repository:alice/private:pull"' in private.headers["www-authenticate"]
        assert 'error="insufficient_scope"' in private.headers["www-authenticate"]
        denied = await bob.post("/v2/alice/public/blobs/uploads/")
        assert denied.status_code == 401  # pull only
        assert "bob may not push alice/public" in denied.json()["errors"][0]["message"]
        await push_image(bob, "acme/tools", "v1")  # through his team's grant
        await push_image(bob, "bob/own", "v1")
        catalog = (await bob.get("/v2/_catalog")).json()["repositories"]
        assert catalog == ["acme/tools", "alice/public", "bob/own"]


# Cross-repository mounts by a token scoped to the destination only --------------------------------------


async def destination_token(world: World, username: str, destination: str) -> dict[str, str]:
    response = await world.registry.client.get(
        "/auth/token",
        params={"service": "trustyard", "scope": f"repository:{destination}:pull,push"},
        auth=(username, PASSWORD),
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def test_mount_with_a_destination_token_when_the_subject_may_read_the_source(world: World) -> None:
    layer = digest_of(b"a layer in shared/src")
    headers = await destination_token(world, "bob", "bob/copy")
    async with world.client() as client:
        mounted = await client.post(
            "/v2/bob/copy/blobs/uploads/", params={"mount": layer, "from": "shared/src"}, headers=headers
        )
        assert mounted.status_code == 201, mounted.text
        assert mounted.headers["docker-content-digest"] == layer
        assert mounted.headers["location"] == f"/v2/bob/copy/blobs/{layer}"
        pulled = await client.get(f"/v2/bob/copy/blobs/{layer}", headers=headers)
        assert digest_of(pulled.content) == layer
    async with world.client("bob") as basic:  # the same with Basic credentials
        mounted = await basic.post("/v2/bob/basic/blobs/uploads/", params={"mount": layer, "from": "shared/src"})
        assert mounted.status_code == 201, mounted.text


async def test_mount_from_a_public_source_with_a_destination_token(world: World) -> None:
    await world.services.repositories.set_public(Actor.system(), RepositoryName.parse("shared/src"), True)
    layer = digest_of(b"a layer in shared/src")
    headers = await destination_token(world, "carol", "carol/copy")
    async with world.client() as client:
        mounted = await client.post(
            "/v2/carol/copy/blobs/uploads/", params={"mount": layer, "from": "shared/src"}, headers=headers
        )
        assert mounted.status_code == 201, mounted.text


async def test_a_mount_without_from_uses_only_repositories_the_subject_may_read(world: World) -> None:
    layer = digest_of(b"a layer in shared/src")  # held by shared/src alone
    async with world.client("bob") as bob:  # bob may read shared/src: mounted from there
        mounted = await bob.post("/v2/bob/anywhere/blobs/uploads/", params={"mount": layer})
        assert mounted.status_code == 201, mounted.text
    async with world.client("carol") as carol:  # carol may not: a session, as for a blob nobody holds
        answer = await carol.post("/v2/carol/anywhere/blobs/uploads/", params={"mount": layer})
        assert answer.status_code == 202, answer.text
        assert answer.headers["location"].startswith("/v2/carol/anywhere/blobs/uploads/")


async def test_a_subject_who_may_not_read_the_source_cannot_tell_whether_the_blob_exists(world: World) -> None:
    existing, missing = digest_of(b"a layer in shared/src"), digest_of(b"never pushed anywhere")
    headers = await destination_token(world, "carol", "carol/copy")

    async def mount(client: httpx.AsyncClient, digest: str, extra: dict[str, str]) -> httpx.Response:
        params = {"mount": digest, "from": "shared/src"}
        return await client.post("/v2/carol/copy/blobs/uploads/", params=params, headers=extra)

    def shape(response: httpx.Response) -> tuple[int, list[str], bytes]:
        varying = {"location", "docker-upload-uuid"}  # a fresh session id either way
        return response.status_code, sorted(set(response.headers) - varying), response.content

    async with world.client() as client:
        answers = [await mount(client, existing, headers), await mount(client, missing, headers)]
        assert [a.status_code for a in answers] == [202, 202]  # an ordinary upload session, never a mount
        assert shape(answers[0]) == shape(answers[1])
        for answer in answers:
            assert answer.headers["range"] == "0-0"
            assert answer.headers["location"].startswith("/v2/carol/copy/blobs/uploads/")
        anonymous = [await mount(client, existing, {}), await mount(client, missing, {})]
        assert [a.status_code for a in anonymous] == [401, 401]
        assert shape(anonymous[0]) == shape(anonymous[1])
        assert anonymous[0].headers["www-authenticate"] == anonymous[1].headers["www-authenticate"]
    async with world.client("carol") as basic:
        answers = [await mount(basic, existing, {}), await mount(basic, missing, {})]
        assert [a.status_code for a in answers] == [202, 202]
        assert shape(answers[0]) == shape(answers[1])
    async with world.client("carol") as basic:  # nothing was linked into carol/copy
        assert (await basic.head(f"/v2/carol/copy/blobs/{existing}")).status_code == 404


async def test_a_read_only_app_token_only_pulls_over_basic(world: World) -> None:
    async with world.client("alice") as alice:
        await push_image(alice, "alice/app", "v1")
    read_only = await world.services.app_tokens.create(Actor.system(), "alice", "pull-only", read_only=True)
    async with world.client("alice", read_only.secret) as client:
        assert (await client.get("/v2/alice/app/manifests/v1")).status_code == 200
        refused = await client.post("/v2/alice/app/blobs/uploads/")
        assert refused.status_code == 401
        assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]

"""The admin API: who may call what (the matrix), what each endpoint does, its OpenAPI document."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from trustyard.services import Services
from trustyard.services.actor import Actor

from ..registry.conftest import ADMIN, ADMIN_PASSWORD, BASE_URL, push_image, running

PASSWORD = "a-long-enough-password"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Services, dict[str, tuple[str, str] | None]]]:
    async with running(tmp_path / "data") as registry:
        services: Services = registry.asgi.state.services
        system = Actor.system()
        for name in ("reader", "owner", "outsider"):
            await services.users.create(system, name, PASSWORD)
        await services.grants.put(system, "acme/app", "read", user="reader")
        await services.grants.put(system, "acme/app", "admin", user="owner")
        token = await services.app_tokens.create(system, "reader", "ci")
        revoked = await services.app_tokens.create(system, "reader", "old")
        await services.app_tokens.revoke(system, "reader", revoked.row.id)
        await push_image(registry.client, "acme/app", "v1")
        callers: dict[str, tuple[str, str] | None] = {
            "anonymous": None,
            "reader": ("reader", token.secret),  # an app token as the password
            "owner": ("owner", PASSWORD),
            "outsider": ("outsider", PASSWORD),
            "admin": ADMIN,
            "revoked": ("reader", revoked.secret),
            "wrong": ("owner", "not-the-password"),
        }
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=registry.asgi), base_url=BASE_URL)
        yield client, services, callers
        await client.aclose()


CALLERS = ("anonymous", "reader", "owner", "outsider", "admin", "revoked", "wrong")
# method, path, body, statuses per caller in CALLERS order
MATRIX: list[tuple[str, str, object, tuple[int, ...]]] = [
    ("GET", "/api/v1/me", None, (401, 200, 200, 200, 200, 401, 401)),
    ("GET", "/api/v1/users", None, (401, 403, 403, 403, 200, 401, 401)),
    ("POST", "/api/v1/users", {"name": "new"}, (401, 403, 403, 403, 201, 401, 401)),
    ("GET", "/api/v1/users/owner", None, (401, 403, 200, 403, 200, 401, 401)),
    ("PATCH", "/api/v1/users/outsider", {"active": True}, (401, 403, 403, 403, 200, 401, 401)),
    (
        "PUT",
        "/api/v1/users/owner/password",
        {"password": PASSWORD, "current_password": PASSWORD},
        (401, 403, 200, 403, 200, 401, 401),
    ),
    ("GET", "/api/v1/users/owner/tokens", None, (401, 403, 200, 403, 200, 401, 401)),
    ("POST", "/api/v1/users/owner/tokens", {"name": "t"}, (401, 403, 201, 403, 201, 401, 401)),
    ("GET", "/api/v1/organizations", None, (401, 403, 403, 403, 200, 401, 401)),
    ("POST", "/api/v1/organizations", {"name": "neworg"}, (401, 403, 403, 403, 201, 401, 401)),
    ("GET", "/api/v1/grants", None, (401, 403, 403, 403, 200, 401, 401)),
    ("GET", "/api/v1/grants?target=acme/app", None, (401, 403, 200, 403, 200, 401, 401)),
    (
        "POST",
        "/api/v1/grants",
        {"target": "acme/app", "role": "read", "user": "outsider"},
        (401, 403, 201, 403, 201, 401, 401),
    ),
    ("GET", "/api/v1/repositories/acme/app", None, (401, 200, 200, 403, 200, 401, 401)),
    ("PATCH", "/api/v1/repositories/acme/app", {"public": True}, (401, 403, 200, 403, 200, 401, 401)),
    ("GET", "/api/v1/audit", None, (401, 403, 403, 403, 200, 401, 401)),
    ("GET", "/api/v1/settings/storage", None, (401, 403, 403, 403, 200, 401, 401)),
    ("GET", "/api/v1/gc", None, (401, 403, 403, 403, 200, 401, 401)),
    ("GET", "/api/v1/gc/runs", None, (401, 403, 403, 403, 200, 401, 401)),
    ("POST", "/api/v1/settings/storage/test", {"inmemory": {}}, (401, 403, 403, 403, 200, 401, 401)),
    ("DELETE", "/api/v1/users/outsider", None, (401, 403, 403, 403, 204, 401, 401)),
    ("DELETE", "/api/v1/repositories/acme/app", None, (401, 403, 204, 403, 204, 401, 401)),
]


@pytest.mark.parametrize("caller", CALLERS)
async def test_admin_api_matrix(
    api: tuple[httpx.AsyncClient, Services, dict[str, tuple[str, str] | None]], caller: str
) -> None:
    client, _, callers = api
    column = CALLERS.index(caller)
    wrong = {}
    for method, path, body, statuses in MATRIX:
        response = await client.request(method, path, json=body, auth=callers[caller])
        refused = caller in ("revoked", "wrong") and response.status_code == 429  # guessing is rate-limited
        if response.status_code != statuses[column] and not refused:
            wrong[f"{method} {path}"] = (response.status_code, statuses[column], response.text[:200])
        if response.status_code == 401:
            assert response.headers["www-authenticate"] == 'Basic realm="trustyard admin"'
    assert not wrong, f"{caller}: (got, expected, body) {wrong}"


async def test_users_teams_grants_tokens_round_trip(
    api: tuple[httpx.AsyncClient, Services, dict[str, tuple[str, str] | None]],
) -> None:
    client, services, _ = api
    created = await client.post("/api/v1/users", json={"name": "dev", "password": PASSWORD}, auth=ADMIN)
    assert created.json() == {"name": "dev", "admin": False, "active": True, "created_at": created.json()["created_at"]}
    assert (await client.post("/api/v1/users", json={"name": "dev"}, auth=ADMIN)).status_code == 409
    # Without a password, one is generated and returned once (it was created with no way to log in).
    generated = await client.post("/api/v1/users", json={"name": "ops"}, auth=ADMIN)
    assert generated.status_code == 201
    ops_password = generated.json()["password"]
    assert (await client.get("/api/v1/me", auth=("ops", ops_password))).json()["name"] == "ops"
    assert "password" not in (await client.get("/api/v1/users/ops", auth=ADMIN)).json()
    assert (await client.post("/api/v1/users", json={"name": "Bad Name"}, auth=ADMIN)).status_code == 400
    assert (await client.post("/api/v1/users", json={"name": "x", "password": "short"}, auth=ADMIN)).status_code == 400
    assert (await client.post("/api/v1/organizations", json={"name": "dev"}, auth=ADMIN)).status_code == 409

    assert (await client.post("/api/v1/organizations", json={"name": "team"}, auth=ADMIN)).status_code == 201
    teams = await client.get("/api/v1/organizations/team/teams", auth=ADMIN)
    assert [t["name"] for t in teams.json()["teams"]] == ["owners"]
    assert (await client.post("/api/v1/organizations/team/teams", json={"name": "devs"}, auth=ADMIN)).status_code == 201
    assert (await client.put("/api/v1/organizations/team/teams/devs/members/dev", auth=ADMIN)).status_code == 204
    members = await client.get("/api/v1/organizations/team/teams/devs/members", auth=ADMIN)
    assert members.json() == {"members": ["dev"]}
    grant = await client.post(
        "/api/v1/grants", json={"target": "team/*", "role": "read-write", "team": "team/devs"}, auth=ADMIN
    )
    assert grant.status_code == 201
    assert grant.json()["target"] == "team/*"
    subject = await services.permissions.subject("dev")
    assert subject is not None
    assert [g.target for g in subject.grants] == ["team"]

    token = await client.post("/api/v1/users/dev/tokens", json={"name": "laptop"}, auth=("dev", PASSWORD))
    secret = token.json()["token"]
    listed = await client.get("/api/v1/users/dev/tokens", auth=("dev", secret))
    assert [t["name"] for t in listed.json()["tokens"]] == ["laptop"]
    assert secret not in listed.text
    assert "secret_hash" not in listed.text
    revoke = await client.delete(f"/api/v1/users/dev/tokens/{token.json()['id']}", auth=("dev", PASSWORD))
    assert revoke.status_code == 204
    assert (await client.get("/api/v1/me", auth=("dev", secret))).status_code == 401

    assert (await client.delete(f"/api/v1/grants/{grant.json()['id']}", auth=ADMIN)).status_code == 204
    assert (await client.delete("/api/v1/organizations/team", auth=ADMIN)).status_code == 204
    audit = (await client.get("/api/v1/audit", params={"limit": 100}, auth=ADMIN)).json()["events"]
    actions = [e["action"] for e in audit]
    for action in ("user.create", "organization.create", "team.member.add", "grant.put", "token.revoke"):
        assert action in actions
    assert all(PASSWORD not in str(e) and secret not in str(e) for e in audit)


async def test_generated_password_and_self_service(
    api: tuple[httpx.AsyncClient, Services, dict[str, tuple[str, str] | None]],
) -> None:
    client, _, _ = api
    without = await client.put("/api/v1/users/owner/password", json={}, auth=("owner", PASSWORD))
    assert without.status_code == 403
    assert "current password" in without.json()["error"]["message"]
    wrong = {"current_password": "not-the-password"}
    assert (await client.put("/api/v1/users/owner/password", json=wrong, auth=("owner", PASSWORD))).status_code == 403
    current = {"current_password": PASSWORD}
    generated = await client.put("/api/v1/users/owner/password", json=current, auth=("owner", PASSWORD))
    new = generated.json()["password"]
    assert len(new) >= 20
    assert (await client.get("/api/v1/me", auth=("owner", new))).json()["name"] == "owner"
    assert (await client.get("/api/v1/me", auth=("owner", PASSWORD))).status_code == 401
    assert (await client.patch("/api/v1/users/admin", json={"admin": False}, auth=ADMIN)).status_code == 400


async def test_repository_visibility_and_delete(
    api: tuple[httpx.AsyncClient, Services, dict[str, tuple[str, str] | None]],
) -> None:
    client, _, _ = api
    assert (await client.get("/v2/acme/app/manifests/v1")).status_code == 401
    assert (await client.patch("/api/v1/repositories/acme/app", json={"public": True}, auth=ADMIN)).status_code == 200
    token = (await client.get("/auth/token", params={"scope": "repository:acme/app:pull"})).json()["token"]
    pulled = await client.get("/v2/acme/app/manifests/v1", headers={"Authorization": f"Bearer {token}"})
    assert pulled.status_code == 200
    listed = await client.get("/api/v1/repositories", auth=ADMIN)
    assert listed.json() == {"repositories": ["acme/app"]}
    assert (await client.delete("/api/v1/repositories/acme/app", auth=ADMIN)).status_code == 204
    assert (await client.delete("/api/v1/repositories/acme/app", auth=ADMIN)).status_code == 404
    assert (await client.get("/api/v1/repositories", auth=ADMIN)).json() == {"repositories": []}


async def test_openapi_document_lists_every_endpoint(
    api: tuple[httpx.AsyncClient, Services, dict[str, tuple[str, str] | None]],
) -> None:
    client, _, _ = api
    document = (await client.get("/api/v1/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    assert "post" in paths["/api/v1/users"]
    assert paths["/api/v1/grants/{grant}"]["delete"]["parameters"][0]["schema"] == {"type": "integer"}
    assert "/api/v1/repositories/{name}" in paths
    refs = {
        op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
        for p in paths.values()
        for op in p.values()
    }
    for ref in filter(None, refs):
        assert ref.rsplit("/", 1)[1] in document["components"]["schemas"]
    assert ADMIN_PASSWORD not in str(document)


async def test_an_app_token_cannot_change_the_account_that_issued_it(
    api: tuple[httpx.AsyncClient, Services, dict[str, tuple[str, str] | None]],
) -> None:
    """Today a leaked CI token could set a new password and mint fresh tokens, outliving its own revocation."""
    client, _, callers = api
    leaked = callers["reader"]
    assert leaked is not None
    new_password = {"password": "chosen-by-the-thief", "current_password": PASSWORD}
    refused = await client.put("/api/v1/users/reader/password", json=new_password, auth=leaked)
    assert refused.status_code == 403
    assert "password" in refused.json()["error"]["message"]
    assert (await client.post("/api/v1/users/reader/tokens", json={"name": "mine"}, auth=leaked)).status_code == 403
    listed = await client.get("/api/v1/users/reader/tokens", auth=leaked)  # reading stays possible
    assert listed.status_code == 200
    token_id = listed.json()["tokens"][0]["id"]
    assert (await client.delete(f"/api/v1/users/reader/tokens/{token_id}", auth=leaked)).status_code == 403
    assert (await client.get("/api/v1/me", auth=leaked)).status_code == 200
    registry_token = await client.get("/auth/token", params={"scope": "repository:acme/app:pull"}, auth=leaked)
    assert registry_token.status_code == 200  # the registry is what app tokens are for
    assert (await client.get("/api/v1/me", auth=("reader", PASSWORD))).status_code == 200  # the password held


async def test_administrators_set_other_passwords_without_the_current_one(
    api: tuple[httpx.AsyncClient, Services, dict[str, tuple[str, str] | None]],
) -> None:
    client, _, _ = api
    assert (await client.put("/api/v1/users/owner/password", json={}, auth=ADMIN)).status_code == 200
    assert (await client.put("/api/v1/users/admin/password", json={}, auth=ADMIN)).status_code == 403  # their own
    own = {"current_password": ADMIN_PASSWORD, "password": ADMIN_PASSWORD}
    assert (await client.put("/api/v1/users/admin/password", json=own, auth=ADMIN)).status_code == 200


async def test_a_read_only_app_token_only_pulls(
    api: tuple[httpx.AsyncClient, Services, dict[str, tuple[str, str] | None]],
) -> None:
    client, _, _ = api
    created = await client.post(
        "/api/v1/users/owner/tokens", json={"name": "ro", "read_only": True}, auth=("owner", PASSWORD)
    )
    assert created.status_code == 201
    assert created.json()["read_only"] is True
    scope = {"scope": "repository:acme/app:pull,push"}
    granted = await client.get("/auth/token", params=scope, auth=("owner", created.json()["token"]))
    assert granted.status_code == 200
    full = await client.get("/auth/token", params=scope, auth=("owner", PASSWORD))
    assert _actions(full.json()["token"]) == ["pull", "push"]
    assert _actions(granted.json()["token"]) == ["pull"]


def _actions(token: str) -> list[str]:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return sorted(claims["access"][0]["actions"])


async def test_a_deleted_namespace_cannot_be_inherited(tmp_path: Path) -> None:
    """Today: delete org tmporg, create a user tmporg, and that user owns tmporg/private and its grants."""
    async with running(tmp_path / "data") as registry:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=registry.asgi), base_url=BASE_URL, auth=ADMIN)
        services: Services = registry.asgi.state.services
        await services.users.create(Actor.system(), "outsider", PASSWORD)
        assert (await client.post("/api/v1/organizations", json={"name": "tmporg"})).status_code == 201
        await push_image(registry.client, "tmporg/private", "1")
        on_namespace = {"target": "tmporg/*", "role": "read", "user": "outsider"}
        assert (await client.post("/api/v1/grants", json=on_namespace)).status_code == 201

        refused = await client.delete("/api/v1/organizations/tmporg")
        assert refused.status_code == 400
        assert "tmporg/private" in refused.json()["error"]["message"]
        assert "with_repositories" in refused.json()["error"]["message"]
        deleted = await client.delete("/api/v1/organizations/tmporg", params={"with_repositories": "true"})
        assert deleted.status_code == 204
        assert (await client.get("/api/v1/repositories")).json() == {"repositories": []}

        squatter = await client.post("/api/v1/users", json={"name": "tmporg", "password": PASSWORD})
        assert squatter.status_code == 409
        assert "reserved" in squatter.json()["error"]["message"]
        assert (await client.post("/api/v1/organizations", json={"name": "tmporg"})).status_code == 409
        reserved = (await client.get("/api/v1/reserved-names")).json()["reserved"]
        assert [(r["name"], r["kind"], r["reserved_by"]) for r in reserved] == [("tmporg", "organization", "admin")]

        assert (await client.delete("/api/v1/reserved-names/tmporg")).status_code == 204
        assert (await client.delete("/api/v1/reserved-names/tmporg")).status_code == 404
        created = await client.post("/api/v1/users", json={"name": "tmporg", "password": PASSWORD})
        assert created.status_code == 201
        assert (await client.get("/api/v1/grants", params={"target": "tmporg/*"})).json()["grants"] == []
        outsider = await services.permissions.subject("outsider")
        assert outsider is not None
        assert outsider.grants == ()
        await client.aclose()


async def test_a_deleted_user_keeps_their_repositories_until_told(tmp_path: Path) -> None:
    async with running(tmp_path / "data") as registry:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=registry.asgi), base_url=BASE_URL, auth=ADMIN)
        services: Services = registry.asgi.state.services
        await services.users.create(Actor.system(), "leaver", PASSWORD)
        await push_image(registry.client, "leaver/app", "v1")
        refused = await client.delete("/api/v1/users/leaver")
        assert refused.status_code == 400
        assert "leaver/app" in refused.json()["error"]["message"]
        assert (await client.get("/api/v1/users/leaver")).status_code == 200
        assert (await client.delete("/api/v1/users/leaver?with_repositories=true")).status_code == 204
        assert (await client.get("/api/v1/repositories")).json() == {"repositories": []}
        assert not (registry.repositories_root / "leaver" / "app" / "_manifests").exists()
        again = await client.post("/api/v1/users", json={"name": "leaver", "password": PASSWORD})
        assert again.status_code == 409
        await client.aclose()

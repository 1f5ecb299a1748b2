"""Real clients over TLS with login, as a user who is not an administrator, on SQLite and on PostgreSQL.

Each test starts its own trustyard (the session's registry runs on SQLite), creates the user `dev` through
the admin API, and has skopeo, podman, buildah, oras (oras-py) and docker trust the CA, log in, push where `dev` may
(its own namespace `dev/`), be refused where it may not, and lose access when its app token is revoked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from . import TARGET, Clients, Docker, Image, Registry, run, sha256_digest, start_registry
from .test_oras import Oras, push_artifact

pytestmark = [
    pytest.mark.clients,
    pytest.mark.trustyard_only(reason="logs in to trustyard's token auth"),
]

DEV_PASSWORD = "dev-password-for-e2e"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def own_registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    database = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    registry = start_registry(TARGET, tmp_path / "data", database_url=database)
    try:
        yield registry
    finally:
        registry.stop()


def create_dev(registry: Registry) -> str:
    """The user `dev` (password DEV_PASSWORD) and an app token of theirs, all through the admin API."""
    with registry.http(username=None) as admin:
        admin.auth = httpx.BasicAuth("admin", registry.password or "")  # creating users needs the password
        created = admin.post("/api/v1/users", json={"name": "dev", "password": DEV_PASSWORD})
        assert created.status_code == 201, created.text
        token = admin.post("/api/v1/users/dev/tokens", json={"name": "e2e"}, auth=("dev", DEV_PASSWORD))
        assert token.status_code == 201, token.text
        secret: str = token.json()["token"]
        return secret


def test_clients_log_in_push_pull_and_are_refused(
    own_registry: Registry, clients: Clients, busybox: Image, busybox_layout: Path, tmp_path: Path
) -> None:
    registry, tls = own_registry, own_registry.tls_flags()
    token = create_dev(registry)
    host = registry.host
    env = {**clients.env, "REGISTRY_AUTH_FILE": str(tmp_path / "auth.json")}  # dev's own credentials
    (tmp_path / "auth.json").write_text('{"auths": {}}')

    def skopeo(*args: str, check: bool = True) -> str:
        return run(["skopeo", "--policy", clients.policy, *args], env=env, check=check).stdout

    # skopeo logs in with the app token and pushes into dev's namespace.
    skopeo("login", *tls, "-u", "dev", "-p", token, host)
    skopeo(
        "copy", "--quiet", *registry.tls_flags("dest-"), f"oci:{busybox_layout}:latest", f"docker://{host}/dev/app:1"
    )
    assert (
        sha256_digest(run(["skopeo", "inspect", "--raw", *tls, f"docker://{host}/dev/app:1"], env=env).stdout.encode())
        == busybox.digest
    )

    # podman logs in with the password: pull, then push under another tag.
    podman = [*clients.storage_flags("podman-login"), "--events-backend", "none", "--cgroup-manager", "cgroupfs"]
    run(["podman", *podman, "login", *tls, "-u", "dev", "-p", DEV_PASSWORD, host], env=env)
    run(["podman", *podman, "pull", *tls, f"{host}/dev/app:1"], env=env)
    run(["podman", *podman, "tag", f"{host}/dev/app:1", f"{host}/dev/app:2"], env=env)
    run(["podman", *podman, "push", *tls, f"{host}/dev/app:2"], env=env)

    # buildah shares the auth file: pull and push again.
    buildah = clients.storage_flags("buildah-login")
    run(["buildah", *buildah, "pull", *tls, f"docker://{host}/dev/app:2"], env=env)
    run(["buildah", *buildah, "push", *tls, f"{host}/dev/app:2", f"docker://{host}/dev/app:3"], env=env)
    tags = json.loads(skopeo("list-tags", *tls, f"docker://{host}/dev/app"))["Tags"]
    assert sorted(tags) == ["1", "2", "3"]

    # oras (oras-py) with the app token: an artifact pushed and pulled back.
    oras_client = Oras(hostname=host, tls_verify=str(registry.ca))
    oras_client.auth.set_basic_auth("dev", token)
    push_artifact(oras_client, tmp_path / "artifact", f"{host}/dev/artifact:1")
    oras_client.pull(target=f"{host}/dev/artifact:1", outdir=str(tmp_path / "pulled"))
    assert (tmp_path / "pulled" / "payload.bin").exists()

    # Refused: another namespace (push and pull), then everything once the token is revoked.
    refused = skopeo(
        "copy",
        "--quiet",
        *registry.tls_flags("dest-"),
        f"oci:{busybox_layout}:latest",
        f"docker://{host}/acme/app:1",
        check=False,
    )
    assert refused == ""
    assert run(["skopeo", "inspect", *tls, f"docker://{host}/acme/app:1"], env=env, check=False).returncode != 0
    with registry.http(username="dev", secret=token) as dev:
        tokens = dev.get("/api/v1/users/dev/tokens", auth=("dev", token)).json()["tokens"]
        revoke = f"/api/v1/users/dev/tokens/{tokens[0]['id']}"
        assert dev.delete(revoke, auth=("dev", token)).status_code == 403  # a token cannot revoke itself ...
        assert dev.delete(revoke, auth=("dev", DEV_PASSWORD)).status_code == 204  # ... the password can
    revoked = ["skopeo", "inspect", *tls, "--creds", f"dev:{token}", f"docker://{host}/dev/app:1"]
    assert run(revoked, env=env, check=False).returncode != 0
    assert run(["skopeo", "login", *tls, "-u", "dev", "-p", token, host], env=env, check=False).returncode != 0

    # The audit log names who pushed, and the refused login.
    with registry.http(username=None) as admin:
        events = admin.get("/api/v1/audit", params={"limit": 200}, auth=("admin", registry.secret or "")).json()[
            "events"
        ]
    pushes = [e for e in events if e["action"] == "manifest.push"]
    assert {e["actor"] for e in pushes} == {"dev"}
    assert any(e["action"] == "login.failed" and e["target"] == "dev" for e in events)


def test_docker_login_push_pull(own_registry: Registry, docker_engine: Docker, busybox_layout: Path) -> None:
    registry = own_registry
    create_dev(registry)
    docker_engine.login(registry, "dev", DEV_PASSWORD)
    tag = f"{registry.host}/dev/docker:1"
    docker_engine("import", busybox_layout / "blobs" / "sha256" / _first_layer(busybox_layout), tag)
    docker_engine("push", tag)
    docker_engine("rmi", tag)
    docker_engine("pull", tag)
    denied = docker_engine("push", f"{registry.host}/acme/app:1", check=False)
    assert denied.returncode != 0
    docker_engine("logout", registry.host)


def _first_layer(layout: Path) -> str:
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs" / "sha256" / index["manifests"][0]["digest"].split(":")[1]).read_text())
    return str(manifest["layers"][0]["digest"].split(":")[1])

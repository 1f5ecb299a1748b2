"""An in-process registry per test, driven over ASGI by httpx, and small helpers to push blobs and images.

The app is built exactly as ``trustyard serve`` builds it in a worker (``create_app(...)``)
on a fresh data directory: filesystem storage and SQLite. ``ASGITransport`` does not run the lifespan, so
``running`` drives ``app.router.lifespan_context`` itself; leaving it disposes the engine and driver, as a
server restart would.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from trustyard.app import create_app
from trustyard.config import Settings
from trustyard.oci import mediatypes as mt
from trustyard.oci.digest import Digest

from ..tokenauth import DockerTokenAuth

BASE_URL = "http://registry.test"
ADMIN_PASSWORD = "admin-password-for-tests"
ADMIN = ("admin", ADMIN_PASSWORD)
EMPTY_CONFIG = b"{}"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


@dataclass
class Registry:
    """A running app: ``client`` speaks to it; ``data_dir`` is where it keeps everything."""

    client: httpx.AsyncClient
    data_dir: Path
    asgi: Any = field(repr=False)

    @property
    def repositories_root(self) -> Path:
        return self.data_dir / "storage" / "docker" / "registry" / "v2" / "repositories"

    async def token(self, *scopes: str) -> str:
        """A registry token for ``scopes``, as admin."""
        response = await self.client.get(
            "/auth/token", params=[("service", "trustyard"), *(("scope", s) for s in scopes)], auth=ADMIN
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["token"]
        return token

    def staging_files(self) -> list[str]:
        """Every file an upload left behind: repository ``_uploads`` dirs and the driver's temp area."""
        storage = self.data_dir / "storage"
        found = [str(p.relative_to(storage)) for p in self.repositories_root.glob("*/_uploads/**/*")]
        found += [str(p.relative_to(storage)) for p in (storage / ".trustyard-tmp").rglob("*") if p.is_file()]
        return sorted(found)


@asynccontextmanager
async def running(data_dir: Path, **settings: Any) -> AsyncIterator[Registry]:
    """The app with ``admin`` (password ADMIN_PASSWORD); ``client`` logs in as admin through token auth."""
    app = create_app(Settings(data_dir=data_dir, admin_password=ADMIN_PASSWORD, **settings), migrate_first=True)
    asgi = app
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=asgi)
        auth = DockerTokenAuth("admin", ADMIN_PASSWORD, f"{BASE_URL}/auth/token")
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, auth=auth) as client:
            yield Registry(client, data_dir, asgi)


def client_as(registry: Registry, username: str | None = None, secret: str | None = None) -> httpx.AsyncClient:
    """Another client of the same app: as ``username`` through token auth, or with no credentials at all."""
    transport = httpx.ASGITransport(app=registry.asgi)
    auth = DockerTokenAuth(username, secret, f"{BASE_URL}/auth/token") if username else None
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL, auth=auth)


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[Registry]:
    async with running(tmp_path / "data") as started:
        yield started


@pytest.fixture
def client(registry: Registry) -> httpx.AsyncClient:
    return registry.client


# Responses


def error_code(response: httpx.Response) -> str:
    """``errors[0].code`` of a spec error body (and the body must be one)."""
    assert response.headers["content-type"].startswith("application/json"), response.text
    errors = response.json()["errors"]
    assert isinstance(errors, list)
    assert errors, response.text
    code: str = errors[0]["code"]
    return code


def error_message(response: httpx.Response) -> str:
    message: str = response.json()["errors"][0]["message"]
    return message


# Content


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return str(Digest.of(data, algorithm))


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


def to_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=1).encode()


def image_manifest(
    config: bytes,
    layers: Sequence[bytes],
    *,
    media_type: str = mt.OCI_MANIFEST,
    config_type: str | None = None,
    layer_type: str | None = None,
    artifact_type: str | None = None,
    subject: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
) -> bytes:
    docker = media_type == mt.DOCKER_MANIFEST
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": descriptor(config_type or (mt.DOCKER_CONFIG if docker else mt.OCI_CONFIG), config),
        "layers": [descriptor(layer_type or (DOCKER_LAYER if docker else LAYER), layer) for layer in layers],
    }
    if artifact_type:
        document["artifactType"] = artifact_type
    if subject:
        document["subject"] = subject
    if annotations:
        document["annotations"] = annotations
    return to_bytes(document)


def index_manifest(
    children: Sequence[tuple[str, bytes]],
    *,
    media_type: str = mt.OCI_INDEX,
    subject: dict[str, Any] | None = None,
) -> bytes:
    """An index of ``(media type, manifest bytes)`` children, one platform each."""
    manifests = [
        descriptor(child_type, payload, platform={"architecture": f"arch{i}", "os": "linux"})
        for i, (child_type, payload) in enumerate(children)
    ]
    document: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}
    if subject:
        document["subject"] = subject
    return to_bytes(document)


# Pushing


async def push_blob(client: httpx.AsyncClient, repository: str, data: bytes, algorithm: str = "sha256") -> str:
    """Monolithic POST ``?digest=``; the blob's digest."""
    digest = digest_of(data, algorithm)
    response = await client.post(f"/v2/{repository}/blobs/uploads/", params={"digest": digest}, content=data)
    assert response.status_code == 201, response.text
    return digest


async def start_upload(client: httpx.AsyncClient, repository: str) -> str:
    """POST a session; its Location."""
    response = await client.post(f"/v2/{repository}/blobs/uploads/")
    assert response.status_code == 202, response.text
    location: str = response.headers["location"]
    return location


async def put_manifest(
    client: httpx.AsyncClient,
    repository: str,
    reference: str,
    payload: bytes,
    media_type: str = mt.OCI_MANIFEST,
    **params: Any,
) -> httpx.Response:
    return await client.put(
        f"/v2/{repository}/manifests/{reference}",
        content=payload,
        headers={"Content-Type": media_type},
        params=params,
    )


@dataclass(frozen=True)
class Image:
    digest: str
    manifest: bytes
    config: bytes
    layers: tuple[bytes, ...]
    media_type: str


async def push_image(
    client: httpx.AsyncClient,
    repository: str,
    reference: str,
    *,
    seed: str = "",
    media_type: str = mt.OCI_MANIFEST,
    **manifest_options: Any,
) -> Image:
    """Push a config, two layers and a manifest (by tag or digest reference)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    layers = (f"layer one {seed}".encode(), f"layer two {seed}".encode())
    for blob in (config, *layers):
        await push_blob(client, repository, blob)
    manifest = image_manifest(config, layers, media_type=media_type, **manifest_options)
    digest = digest_of(manifest)
    response = await put_manifest(client, repository, digest if reference == "@" else reference, manifest, media_type)
    assert response.status_code == 201, response.text
    assert response.headers["docker-content-digest"] == digest
    return Image(digest, manifest, config, layers, media_type)


async def catalog(client: httpx.AsyncClient) -> list[str]:
    response = await client.get("/v2/_catalog")
    assert response.status_code == 200, response.text
    names: list[str] = response.json()["repositories"]
    return names

"""CPU per request inside the application: the small /v2 reads called straight over ASGI, no server, no socket.

What the benchmark's ``*_srvcpu`` rows hold is this plus Granian (socket, HTTP parsing, task scheduling) and
the load generator's share of the two cores; this isolates the part trustyard's own code decides (the edge
layer, dispatch, auth, the index read, the response), so a change to that path can be read in one run
without the benchmark's noise. The app is built as a worker builds it, on a fresh data directory
(filesystem + SQLite), one image is pushed, a Bearer token fetched, then each request is called ``--n`` times
with a minimal ``receive``/``send`` and timed with the process's CPU clock (best of ``--rounds``).

    .venv/bin/python bench/asgi_cost.py [--n 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' ASGI scope
from tests.asgi import http_scope

from trustyard.app import create_app
from trustyard.config import Settings

PASSWORD = "bench-password-1234567890"
REPO = "bench/cost"
MISSING = "bench/none"  # in the token's scope, never pushed: the 404 a scanner of names gets


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(data_dir=Path(tmp) / "data", admin_password=PASSWORD), migrate_first=True)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r.test") as http:
                bearer, blob = await _seed(http)
            requests = {
                "manifest GET": ("GET", f"/v2/{REPO}/manifests/latest"),
                "manifest HEAD": ("HEAD", f"/v2/{REPO}/manifests/latest"),
                "blob HEAD": ("HEAD", f"/v2/{REPO}/blobs/{blob}"),
                "tags list": ("GET", f"/v2/{REPO}/tags/list"),
                "catalog": ("GET", "/v2/_catalog"),
                "tags, no repo": ("GET", f"/v2/{MISSING}/tags/list", 404),
                "manifest, no repo": ("GET", f"/v2/{MISSING}/manifests/latest", 404),
            }
            print(
                f"# in-process CPU per request, µs (best of {args.rounds} x {args.n}; python {sys.version.split()[0]})"
            )
            for name, (method, path, *status) in requests.items():
                expect = status[0] if status else 200
                best = min([await _time(app, method, path, bearer, args.n, expect) for _ in range(args.rounds)])
                print(f"{name:<17} {best:7.1f}")


async def _time(app: Any, method: str, path: str, bearer: bytes, n: int, expect: int) -> float:
    headers = [(b"host", b"r.test"), (b"authorization", bearer), (b"accept", b"*/*")]
    request = {"type": "http.request", "body": b"", "more_body": False}
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return request

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    gc.collect()
    started = time.process_time()
    for _ in range(n):
        await app(http_scope(method, path, headers), receive, send)
    spent = time.process_time() - started
    assert set(statuses) == {expect}, f"{method} {path}: {set(statuses)}"
    return spent / n * 1e6


async def _seed(http: httpx.AsyncClient) -> tuple[bytes, str]:
    """One image pushed; the Bearer token for it and its layer's digest."""
    made = await http.post("/api/v1/users/admin/tokens", json={"name": "bench"}, auth=("admin", PASSWORD))
    basic = base64.b64encode(f"admin:{made.json()['token']}".encode()).decode()
    got = await http.get(
        "/auth/token",
        params={
            "scope": f"repository:{REPO}:pull,push repository:{MISSING}:pull registry:catalog:*",
            "service": "trustyard",
        },
        headers={"Authorization": f"Basic {basic}"},
    )
    bearer = f"Bearer {got.json()['token']}"
    auth = {"Authorization": bearer}
    described = []
    for media, data in (
        ("application/vnd.oci.image.config.v1+json", json.dumps({"architecture": "amd64", "os": "linux"}).encode()),
        ("application/vnd.oci.image.layer.v1.tar", os.urandom(1024)),
    ):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        put = await http.post(f"/v2/{REPO}/blobs/uploads/", params={"digest": digest}, content=data, headers=auth)
        assert put.status_code == 201, put.text
        described.append({"mediaType": media, "digest": digest, "size": len(data)})
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": described[0],
        "layers": [described[1]],
    }
    put = await http.put(
        f"/v2/{REPO}/manifests/latest",
        content=json.dumps(manifest).encode(),
        headers={**auth, "Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert put.status_code == 201, put.text
    return bearer.encode(), described[1]["digest"]


if __name__ == "__main__":
    asyncio.run(main())

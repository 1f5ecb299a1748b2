"""Count what one small image push costs the server, request by request: SQL statements (hot reads on plain
sqlite3 included), write transactions (SQLite ``BEGIN IMMEDIATE``) and fsyncs, as skopeo pushes a one-layer
image (token fetch with an app token, then per blob HEAD, POST, PATCH, PUT, then the manifest PUT), and the
server's CPU time per request (process time while the app handles it, its threads included).
In-process (the app as a worker builds it, over ASGI, on a fresh data directory: filesystem + SQLite); one
image is pushed first and not counted (start-up's background work); deterministic, so it measures a change
without a benchmark's noise. ``PYTHONPATH=<checkout>/src`` counts another checkout with this script.

    .venv/bin/python bench/sql_count.py [--images N]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextvars
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.engine import Engine

from trustyard.app import create_app
from trustyard.config import Settings
from trustyard.db.database import Database

PASSWORD = "bench-password-1234567890"
counts: collections.Counter[str] = collections.Counter()


#: Set while a counted request runs: work of background loops (webhook dispatch, heartbeats) is not counted.
#: Context variables follow the request into SQLAlchemy's greenlets, ``to_thread`` and ``Database.write``.
_in_request: contextvars.ContextVar[bool] = contextvars.ContextVar("in_request", default=False)


@event.listens_for(Engine, "before_cursor_execute")
def _statement(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    if not _in_request.get():
        return
    counts["sql"] += 1
    if statement.startswith("BEGIN IMMEDIATE"):
        counts["write transactions"] += 1


# Hot reads (``Database.hot``) run on plain sqlite3, past SQLAlchemy's events: counted where they run.
_run_plan = Database._run_plan


def _counting_run_plan(self: Database, plan: Any, params: dict[str, Any]) -> list[Any]:
    if _in_request.get():
        counts["sql"] += 1
    return _run_plan(self, plan, params)


Database._run_plan = _counting_run_plan  # type: ignore[method-assign]

_fsync = os.fsync


def _counting_fsync(fd: int) -> None:
    if _in_request.get():
        counts["fsync"] += 1
    _fsync(fd)


os.fsync = _counting_fsync


def _timed(app: Any) -> Any:
    """The app, with the process CPU time spent while it handles a counted request (its threads' included; the
    in-process HTTP client's own work, which runs before and after, is not)."""

    async def timed(scope: Any, receive: Any, send: Any) -> None:
        started = time.process_time()
        try:
            await app(scope, receive, send)
        finally:
            if _in_request.get():
                counts["cpu µs"] += round((time.process_time() - started) * 1e6)

    return timed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(data_dir=Path(tmp) / "data", admin_password=PASSWORD), migrate_first=True)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=_timed(app))
            async with httpx.AsyncClient(transport=transport, base_url="http://registry.test") as http:
                made = await http.post("/api/v1/users/admin/tokens", json={"name": "bench"}, auth=("admin", PASSWORD))
                secret = made.json()["token"]
                per_request: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
                # One image first, not counted: what start-up leaves running in the background (the first
                # webhook lease, shared secrets) would otherwise land in the counts of the first requests.
                await _push(http, "bench/warm-up", secret, collections.defaultdict(collections.Counter))
                for n in range(args.images):
                    await _push(http, f"bench/small{n}", secret, per_request)
        width = max(len(k) for k in per_request)
        print(f"# per image, averaged over {args.images} pushes of a one-layer image (config + layer + manifest)")
        print(f"{'request':<{width}}  {'sql':>5} {'write txns':>10} {'fsync':>5} {'cpu ms':>6}")
        total: collections.Counter[str] = collections.Counter()
        for name, c in per_request.items():
            total.update(c)
            print(
                f"{name:<{width}}  {c['sql'] / args.images:5.1f} {c['write transactions'] / args.images:10.1f} "
                f"{c['fsync'] / args.images:5.1f} {c['cpu µs'] / args.images / 1000:6.2f}"
            )
        print(
            f"{'total':<{width}}  {total['sql'] / args.images:5.1f} "
            f"{total['write transactions'] / args.images:10.1f} {total['fsync'] / args.images:5.1f} "
            f"{total['cpu µs'] / args.images / 1000:6.2f}"
        )


async def _push(http: httpx.AsyncClient, repo: str, secret: str, out: dict[str, collections.Counter[str]]) -> None:
    async def call(name: str, method: str, url: str, **kw: Any) -> httpx.Response:
        before = counts.copy()
        token = _in_request.set(True)
        try:
            response = await http.request(method, url, **kw)
        finally:
            _in_request.reset(token)
        assert response.status_code < 500, response.text
        out[name].update(counts - before)
        return response

    basic = base64.b64encode(f"admin:{secret}".encode()).decode()
    scope = f"repository:{repo}:pull,push"
    got = await call(
        "GET /auth/token",
        "GET",
        "/auth/token",
        params={"scope": scope, "service": "trustyard"},
        headers={"Authorization": f"Basic {basic}"},
    )
    bearer = {"Authorization": f"Bearer {got.json()['token']}"}
    config = json.dumps({"architecture": "amd64", "os": "linux", "repo": repo}).encode()
    layer = os.urandom(1024)
    described = []
    for kind, data in (("config", config), ("layer", layer)):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        await call("HEAD blob", "HEAD", f"/v2/{repo}/blobs/{digest}", headers=bearer)
        started = await call("POST upload", "POST", f"/v2/{repo}/blobs/uploads/", headers=bearer)
        location = started.headers["location"]
        patched = await call(
            "PATCH upload",
            "PATCH",
            location,
            content=data,
            headers={**bearer, "Content-Type": "application/octet-stream"},
        )
        done = await call("PUT upload", "PUT", patched.headers["location"], params={"digest": digest}, headers=bearer)
        assert done.status_code == 201, done.text
        media = (
            "application/vnd.oci.image.config.v1+json" if kind == "config" else "application/vnd.oci.image.layer.v1.tar"
        )
        described.append({"mediaType": media, "digest": digest, "size": len(data)})
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": described[0],
            "layers": [described[1]],
        }
    ).encode()
    put = await call(
        "PUT manifest",
        "PUT",
        f"/v2/{repo}/manifests/latest",
        content=manifest,
        headers={**bearer, "Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert put.status_code == 201, put.text


if __name__ == "__main__":
    asyncio.run(main())

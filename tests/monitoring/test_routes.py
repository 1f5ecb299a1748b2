"""/healthz, /readyz, /debug/health and /metrics on an in-process registry (tests/registry/conftest.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx

from tests.registry.conftest import BASE_URL, Registry, running
from trustyard.config import MetricsSettings


def anonymous(registry: Registry) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=registry.asgi), base_url=BASE_URL)


async def test_healthz_and_readyz_answer_without_login(registry: Registry) -> None:
    async with anonymous(registry) as client:
        assert (await client.get("/healthz")).text == "ok\n"
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert body["status"] == "ready"
        assert body["checks"]["database"]["ok"] is True
        assert body["checks"]["database"]["detail"] == "sqlite"
        assert body["checks"]["storage"]["detail"] == "filesystem"
        distribution = await client.get("/debug/health")
        assert (distribution.status_code, distribution.json()) == (200, {})


async def test_readyz_names_the_storage_that_fails(tmp_path: Path) -> None:
    # An S3 endpoint where nothing listens (a port just freed): the backend is down, the database is fine.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s3 = {"bucket": "b", "region": "us-east-1", "accesskey": "k", "secretkey": "s"}
    storage = {"s3": {**s3, "regionendpoint": f"http://127.0.0.1:{port}"}}
    async with running(tmp_path / "data", storage=storage) as registry, anonymous(registry) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503, ready.text
        body = ready.json()
        assert body["status"] == "not ready"
        assert body["checks"]["database"]["ok"] is True
        assert body["checks"]["storage"]["ok"] is False
        assert body["checks"]["storage"]["detail"].startswith("s3: "), body
        distribution = await client.get("/debug/health")
        assert distribution.status_code == 503
        assert list(distribution.json()) == ["storage"]
        assert (await client.get("/healthz")).status_code == 200  # alive, just not ready


async def test_metrics_count_requests_by_route_template_not_path(registry: Registry) -> None:
    async with anonymous(registry) as client:
        for name in ("a/one", "b/two", "c/three"):
            assert (await client.get(f"/v2/{name}/tags/list")).status_code == 401
        await client.get("/no/such/page")
        assert (await client.get("/readyz")).status_code == 200  # asks storage: one metered operation at least
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    text = response.text
    assert 'route="/v2/{name:path}/tags/list"' in text
    assert "a/one" not in text
    assert "b/two" not in text
    assert 'trustyard_http_requests_total{method="GET",route="unmatched",status="404"}' in text
    assert "trustyard_http_request_duration_seconds_bucket" in text
    assert 'trustyard_storage_operations_total{backend="filesystem"' in text


async def test_monitoring_is_refused_outside_the_allowed_networks(tmp_path: Path) -> None:
    # httpx's ASGI transport presents the client as 127.0.0.1.
    refusing = running(tmp_path / "data", metrics=MetricsSettings(allow=["10.0.0.0/8"]))
    async with refusing as registry, anonymous(registry) as client:
        for path in ("/metrics", "/healthz", "/readyz", "/debug/health"):
            refused = await client.get(path)
            assert refused.status_code == 403, path
            assert "metrics.allow" in refused.text
    allowing = running(tmp_path / "data2", metrics=MetricsSettings(allow=["127.0.0.0/8", "::1"]))
    async with allowing as registry, anonymous(registry) as client:
        assert (await client.get("/metrics")).status_code == 200

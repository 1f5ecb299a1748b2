"""/metrics of a real ``trustyard serve`` with two Granian workers: every worker's samples are summed, whichever
worker answers the scrape; JSON access logs; the allow list read from the config file."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e import Registry, start_registry

pytestmark = pytest.mark.clients


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    env = {"TRUSTYARD_WORKERS": "2", "TRUSTYARD_ACCESS_LOG": "true", "TRUSTYARD_ACCESS_LOG_FORMAT": "json"}
    running = start_registry("trustyard", tmp_path_factory.mktemp("multiprocess") / "data", env=env)
    try:
        yield running
    finally:
        running.stop()


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition text (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        labels_text, _, value = line.rpartition("} ")
        found = dict(re.findall(r'(\w+)="([^"]*)"', labels_text))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(value)
    return 0.0


def test_metrics_sum_every_worker(served: Registry) -> None:
    route = "/v2/{name:path}/tags/list"
    verify = served.ssl_context()
    scrape = httpx.get(f"{served.url}/metrics", verify=verify).text
    before = sample(scrape, "trustyard_http_requests_total", route=route, method="GET", status="401")
    files = served.data_dir / "metrics"
    sent = 0
    # One connection per request, so the kernel spreads them over both workers; stop once both have
    # written samples (each worker keeps its own counter file, named for its pid).
    while sent < 40 or (len(list(files.glob("counter_*.db"))) < 2 and sent < 2000):
        response = httpx.get(f"{served.url}/v2/team/app{sent}/tags/list", verify=verify)
        assert response.status_code == 401
        sent += 1
    workers = {path.name for path in files.glob("counter_*.db")}
    assert len(workers) >= 2, f"only {workers} wrote metrics after {sent} requests"
    for _ in range(4):  # whichever worker answers, it reports the whole node
        text = httpx.get(f"{served.url}/metrics", verify=verify).text
        after = sample(text, "trustyard_http_requests_total", route=route, method="GET", status="401")
        assert after - before == sent
    assert "app1" not in text  # repositories never become labels
    assert sample(text, "trustyard_http_requests_in_flight", method="GET") >= 1  # the scrape itself


def test_storage_and_token_metrics_after_a_push(served: Registry) -> None:
    with served.http() as client:
        data = b"metrics-blob"
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        started = client.post("/v2/ops/metrics/blobs/uploads/")
        assert started.status_code == 202, started.text
        done = client.put(started.headers["location"], params={"digest": digest}, content=data)
        assert done.status_code == 201, done.text
    text = httpx.get(f"{served.url}/metrics", verify=served.ssl_context()).text
    assert sample(text, "trustyard_uploads_total", outcome="started") >= 1
    assert sample(text, "trustyard_uploads_total", outcome="completed") >= 1
    assert sample(text, "trustyard_tokens_issued_total", grant="app_token") >= 1
    # The verified upload is completed straight into the blob's key: no move after it.
    assert sample(text, "trustyard_storage_operations_total", backend="filesystem", operation="complete_upload") >= 1
    assert sample(text, "trustyard_http_request_bytes_total", route="/v2/{name:path}/blobs/uploads/{upload}") >= len(
        data
    )


def test_json_access_log(served: Registry) -> None:
    httpx.get(f"{served.url}/healthz", verify=served.ssl_context())
    # The worker writes the line once the response is sent, so the client may read the log before it is there.
    deadline = time.monotonic() + 10
    while True:
        lines = [line for line in served.server.log.read_text().splitlines() if line.startswith('{"time"')]
        health = [e for e in map(json.loads, lines) if e["path"] == "/healthz"]
        if health or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert health, lines[-5:]
    assert health[-1]["route"] == "/healthz"
    assert health[-1]["status"] == 200
    assert health[-1]["remote"] == "127.0.0.1"


def test_allow_list_from_the_config_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    running = start_registry("trustyard", data, env={"TRUSTYARD_METRICS__ALLOW": '["192.0.2.0/24"]'})
    try:
        refused = httpx.get(f"{running.url}/metrics", verify=running.ssl_context())
        assert refused.status_code == 403
        assert "metrics.allow" in refused.text
    finally:
        running.stop()

"""The S3 endpoints of scripts/object-store.sh for tests: a fresh bucket per test, inspected with plain boto3.

``swift`` is Swift's S3 API (s3api on the proxy, checks signatures), ``moto`` the moto server. Endpoints and
credentials come from the variables ``object-store.sh start --with-moto`` prints (its defaults otherwise);
when an endpoint does not answer, the test skips and says how to start it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config

from trustyard.auth.certificates import ensure_certificates
from trustyard.storage.s3 import S3Driver

START = 'eval "$(bash scripts/object-store.sh start --with-moto)" (scripts/test does this)'


@dataclass(frozen=True)
class Endpoint:
    url: str
    access: str
    secret: str
    region: str


def endpoint(store: str) -> Endpoint:
    """The endpoint of ``store`` ("swift" or "moto"); skips the test when nothing answers there."""
    variable = "S3_ENDPOINT_URL" if store == "swift" else "MOTO_ENDPOINT_URL"
    default = "http://127.0.0.1:8080" if store == "swift" else "http://127.0.0.1:9000"
    url = os.environ.get(variable, default)
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=1).close()
    except OSError:
        pytest.skip(f"the object store's {store} S3 endpoint {url} is not running: {START}")
    return Endpoint(
        url,
        os.environ.get("AWS_ACCESS_KEY_ID", "test:tester"),
        os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    )


def boto_client(where: Endpoint) -> Any:
    client = boto3.client(
        "s3",
        endpoint_url=where.url,
        aws_access_key_id=where.access,
        aws_secret_access_key=where.secret,
        region_name=where.region,
        config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard", "max_attempts": 3}),
    )
    # Swift's s3api refuses DeleteObjects without Content-MD5, which botocore >= 1.36 no longer sends.
    client.meta.events.register("before-call.s3.DeleteObjects", _content_md5)
    return client


def _content_md5(params: dict[str, Any], **_: Any) -> None:
    body = params["body"]
    data = body if isinstance(body, bytes) else str(body).encode()
    params["headers"]["Content-MD5"] = base64.b64encode(hashlib.md5(data).digest()).decode()


@dataclass
class S3Bucket:
    """One bucket made for one test on one store."""

    store: str
    where: Endpoint
    name: str
    client: Any

    @classmethod
    def create(cls, store: str) -> S3Bucket:
        where = endpoint(store)
        client = boto_client(where)
        name = f"t-{uuid.uuid4().hex[:20]}"
        client.create_bucket(Bucket=name)
        return cls(store, where, name, client)

    def driver(self, **options: Any) -> S3Driver:
        settings: dict[str, Any] = {
            "region": self.where.region,
            "endpoint": self.where.url,
            "accesskey": self.where.access,
            "secretkey": self.where.secret,
            "forcepathstyle": True,
            "chunksize": 5 * 1024 * 1024,
            "max_attempts": 3,
        }
        settings.update(options)
        return S3Driver(self.name, **settings)

    def open_uploads(self) -> list[str]:
        response = self.client.list_multipart_uploads(Bucket=self.name)
        return [f"upload {u['Key']} {u['UploadId']}" for u in response.get("Uploads", [])]

    def keys(self) -> list[str]:
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name):
            keys += [entry["Key"] for entry in page.get("Contents", [])]
        return sorted(keys)

    def remove(self) -> None:
        """Empty and delete the bucket (what a failed test left too)."""
        for upload in self.client.list_multipart_uploads(Bucket=self.name).get("Uploads", []):
            self.client.abort_multipart_upload(Bucket=self.name, Key=upload["Key"], UploadId=upload["UploadId"])
        for key in self.keys():
            self.client.delete_object(Bucket=self.name, Key=key)
        self.client.delete_bucket(Bucket=self.name)


@contextmanager
def tls_front(url: str, directory: Path) -> Iterator[str]:
    """An HTTPS endpoint for the plain-HTTP S3 endpoint ``url``: HAProxy terminating TLS in front of it, with a
    certificate from a throwaway CA (clients skip verifying it). Yields the https URL."""
    if shutil.which("haproxy") is None:
        raise AssertionError("haproxy is not installed: apt-get install haproxy (scripts/test does)")
    target = urlsplit(url)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tls = ensure_certificates(directory / "tls", ["127.0.0.1"])
    bundle = directory / "haproxy.pem"  # HAProxy wants the certificate and its key in one file
    bundle.write_bytes(tls.cert.read_bytes() + tls.key.read_bytes())
    config = directory / "haproxy.cfg"
    config.write_text(
        "defaults\n    mode http\n    timeout connect 2s\n    timeout client 60s\n    timeout server 60s\n"
        f"frontend s3\n    bind 127.0.0.1:{port} ssl crt {bundle}\n    default_backend store\n"
        f"backend store\n    server store {target.hostname}:{target.port or 80}\n"
    )
    with open(directory / "haproxy.log", "wb") as log:
        process = subprocess.Popen(["haproxy", "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"haproxy did not listen: {(directory / 'haproxy.log').read_text()}") from None
                time.sleep(0.05)
        yield f"https://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)

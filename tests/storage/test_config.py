"""StorageSettings in words: what the web UI's messages and the audit log say of a backend."""

from __future__ import annotations

import pytest

from trustyard.storage.config import parse_storage_block


@pytest.mark.parametrize(
    ("block", "said"),
    [
        (
            {"s3": {"bucket": "images", "region": "eu-de", "regionendpoint": "https://s3.example"}},
            "the S3 bucket images at https://s3.example",
        ),
        ({"s3": {"bucket": "images", "region": "us-east-1"}}, "the S3 bucket images"),
        (
            {
                "swift": {
                    "authurl": "https://k/auth/v1.0",
                    "username": "u",
                    "password": "hunter2-secret",
                    "container": "c",
                }
            },
            "the Swift container c (https://k/auth/v1.0)",
        ),
        ({"filesystem": {"rootdirectory": "/srv/registry"}}, "the directory /srv/registry"),
        ({"filesystem": {}}, "the default directory"),
        ({"inmemory": {}}, "the inmemory default"),
    ],
)
def test_describe(block: dict[str, object], said: str) -> None:
    described = parse_storage_block(block).describe()
    assert described == said
    assert "hunter2" not in described  # never a secret

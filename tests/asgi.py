"""``http_scope``: the ASGI scope of one HTTP request, for tests (and benchmarks) that call the application
directly, without a server: what a test varies (method, path, query, headers) and what Granian would fill in
for a plain-HTTP request from a loopback client."""

from __future__ import annotations

from typing import Any


def http_scope(
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    *,
    query: bytes = b"",
    raw_path: bytes | None = None,
) -> dict[str, Any]:
    """``raw_path`` defaults to ``path`` encoded (give it when the test sends percent-escapes)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode() if raw_path is None else raw_path,
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1234),
        "server": ("registry.test", 80),
    }

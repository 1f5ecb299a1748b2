"""Property-based fuzzing of every value the registry parses: manifests, digests, repository names, tags,
Range and Content-Range, and the pagination values ``n`` and ``last``.

Whatever arrives, the answer is never a 5xx; a refusal carries one of the spec's error codes for that
endpoint; and a refused request stores nothing (every stored object and staged part, and the upload's
state, are exactly as before). Over 10,000 cases per run (``CASES``), sent straight to the ASGI app (no
sockets) of one registry with SQLite and the in-memory store, so the suite fits in the normal test command.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trustyard.oci import mediatypes as mt
from trustyard.storage.memory import MemoryStore

from ..asgi import http_scope
from .conftest import LAYER, Registry, descriptor, digest_of, push_blob, running, start_upload

REPO = "fuzz/app"
CONFIG = b'{"architecture": "amd64", "os": "linux"}'
LAYER_BYTES = b"fuzzed layer"
BLOB = b"0123456789" * 10  # 100 bytes for ranged reads
#: Examples per property; their sum is the suite's size (at least 10,000).
CASES = {
    "manifest_documents": 2000,
    "manifest_bytes": 1000,
    "digests": 1500,
    "names": 1500,
    "tags": 1000,
    "ranges": 1000,
    "content_ranges": 1000,
    "pagination": 1000,
}
assert sum(CASES.values()) >= 10_000


def fuzz(name: str) -> Any:
    """The settings of one property: its share of CASES, no deadline (a shared machine), the registry kept
    across examples on purpose (that is the point: state must survive every refusal)."""
    return settings(
        max_examples=CASES[name],
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        database=None,
    )


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def code(self) -> str | None:
        try:
            errors = json.loads(self.body)["errors"]
        except (ValueError, KeyError, TypeError):
            return None
        code: str = errors[0]["code"]
        return code


class Target:
    """The registry under fuzzing: one event loop, one app, a token for REPO, raw ASGI requests."""

    def __init__(self, data_dir: Path) -> None:
        self.runner = asyncio.Runner()
        self.context = running(data_dir, storage={"inmemory": {}})
        self.registry: Registry = self.runner.run(self.context.__aenter__())
        self.runner.run(self._seed())

    async def _seed(self) -> None:
        client = self.registry.client
        for blob in (CONFIG, LAYER_BYTES, BLOB):
            await push_blob(client, REPO, blob)
        self.token = await self.registry.token(f"repository:{REPO}:pull,push,delete", "registry:catalog:*")
        self.upload = await start_upload(client, REPO)

    def close(self) -> None:
        self.runner.run(self.context.__aexit__(None, None, None))
        self.runner.close()

    def request(
        self,
        method: str,
        raw_path: str,
        query: str = "",
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> Reply:
        return self.runner.run(self._request(method, raw_path, query, headers or {}, body))

    async def _request(self, method: str, raw_path: str, query: str, headers: dict[str, str], body: bytes) -> Reply:
        sent: list[dict[str, Any]] = []
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if delivered:  # the client stays connected: a disconnect would only come if it went away
                await asyncio.Event().wait()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        all_headers = {"host": "registry.test", "authorization": f"Bearer {self.token}", **headers}
        if body:
            all_headers["content-length"] = str(len(body))
        encoded = [(k.encode(), v.encode("utf-8", "surrogateescape")) for k, v in all_headers.items()]
        scope = http_scope(method, _unquote(raw_path), encoded, query=query.encode(), raw_path=raw_path.encode())
        await self.registry.asgi(scope, receive, send)
        start = sent[0]
        assert start["type"] == "http.response.start"
        response_headers = {k.decode().lower(): v.decode("latin-1") for k, v in start["headers"]}
        return Reply(start["status"], response_headers, b"".join(m.get("body", b"") for m in sent[1:]))

    def stored(self) -> frozenset[tuple[str, int]]:
        """Every object in storage and every staged upload part, with its size."""
        store: MemoryStore = self.registry.asgi.state.services.blobs._storage.current.inner.store  # under MeteredDriver
        objects = {(key, len(data)) for key, (data, _) in store.objects.items()}
        parts = {
            (f"upload:{token}/{etag}", len(data))
            for token, written in store.uploads.items()
            for etag, (_, data) in written.items()
        }
        return frozenset(objects | parts)


def _unquote(path: str) -> str:
    from urllib.parse import unquote

    return unquote(path, errors="surrogateescape").encode("utf-8", "surrogateescape").decode("latin-1")


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    fuzzed = Target(tmp_path_factory.mktemp("fuzz") / "data")
    try:
        yield fuzzed
    finally:
        fuzzed.close()


def check(reply: Reply, allowed: set[int], codes: set[str], method: str = "GET") -> None:
    """Never a 5xx; a status the endpoint may answer (or Starlette's 307 from ``path/`` to ``path``, which
    stores nothing); a refusal with one of ``codes`` in the spec's error body."""
    assert reply.status < 500, (reply.status, reply.body[:500])
    assert reply.status in allowed | {307}, (reply.status, reply.body[:500])
    if reply.status >= 400 and method != "HEAD":
        assert reply.code in codes, (reply.status, reply.body[:500])


# -- strategies ---------------------------------------------------------------------------------------------

KNOWN = [digest_of(blob) for blob in (CONFIG, LAYER_BYTES, BLOB)]
HEX = "0123456789abcdef"
digests = st.one_of(
    st.sampled_from(KNOWN),
    st.builds(lambda h: f"sha256:{h}", st.text(HEX, min_size=64, max_size=64)),  # valid, unknown
    st.builds(lambda h: f"sha512:{h}", st.text(HEX, min_size=128, max_size=128)),
    st.builds(
        lambda a, h: f"{a}:{h}",
        st.sampled_from(["sha256", "sha512", "SHA256", "md5", "", "sha256+b64", "a.b", "sha384"]),
        st.text(HEX + "ABCDEFxyz=_-", max_size=140),
    ),
    st.text(max_size=80),
)
descriptors = st.fixed_dictionaries(
    {},
    optional={
        "mediaType": st.one_of(st.sampled_from([mt.OCI_CONFIG, LAYER, mt.OCI_MANIFEST, mt.OCI_EMPTY]), st.text()),
        "digest": st.one_of(digests, st.integers(), st.none()),
        "size": st.one_of(st.integers(min_value=-(2**70), max_value=2**70), st.floats(), st.text(), st.booleans()),
        "annotations": st.one_of(st.dictionaries(st.text(), st.text(), max_size=3), st.lists(st.text())),
        "platform": st.one_of(st.dictionaries(st.text(), st.text(), max_size=3), st.integers()),
        "artifactType": st.one_of(st.text(), st.integers()),
    },
)
real_descriptors = st.sampled_from(
    [descriptor(mt.OCI_CONFIG, CONFIG), descriptor(LAYER, LAYER_BYTES), descriptor(LAYER, b"never pushed")]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
manifest_documents = st.fixed_dictionaries(
    {},
    optional={
        "schemaVersion": st.one_of(st.just(2), st.sampled_from([1, 3, "2", None, 2.0])),
        "mediaType": st.one_of(st.sampled_from(sorted(mt.MANIFESTS)), st.text(max_size=30), st.integers()),
        "config": st.one_of(real_descriptors, descriptors, json_values),
        "layers": st.one_of(st.lists(st.one_of(real_descriptors, descriptors), max_size=4), json_values),
        "manifests": st.one_of(st.lists(st.one_of(real_descriptors, descriptors), max_size=3), json_values),
        "subject": st.one_of(real_descriptors, descriptors, json_values),
        "annotations": st.one_of(st.dictionaries(st.text(), st.text(), max_size=3), json_values),
        "artifactType": st.one_of(st.text(max_size=20), json_values),
        "fsLayers": json_values,
    },
)
content_types = st.one_of(st.sampled_from(sorted(mt.MANIFESTS | {"application/json", ""})), st.text(max_size=40))
tags = st.one_of(
    st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}", fullmatch=True),
    st.text(max_size=140),
)
names = st.one_of(
    st.from_regex(r"[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*){0,3}", fullmatch=True),
    st.text(max_size=300),
    st.just("a/" * 200 + "b"),
)
MANIFEST_CODES = {"MANIFEST_INVALID", "MANIFEST_BLOB_UNKNOWN", "MANIFEST_UNKNOWN", "DIGEST_INVALID", "SIZE_INVALID"}


def put_manifest(target: Target, reference: str, payload: bytes, content_type: str) -> Reply:
    before = target.stored()
    reply = target.request(
        "PUT",
        f"/v2/{REPO}/manifests/{quote(reference, safe='')}",
        headers={"content-type": content_type},
        body=payload,
    )
    if reply.status != 201:
        assert target.stored() == before, "a refused manifest push changed storage"
    return reply


# -- properties ---------------------------------------------------------------------------------------------


@fuzz("manifest_documents")
@given(document=manifest_documents, content_type=content_types)
def test_manifest_documents(target: Target, document: dict[str, Any], content_type: str) -> None:
    payload = json.dumps(document).encode()
    reply = put_manifest(target, "fuzzed", payload, content_type)
    check(reply, {201, 400, 404, 413}, MANIFEST_CODES | {"TAG_INVALID", "NAME_UNKNOWN"}, "PUT")


@fuzz("manifest_bytes")
@given(
    payload=st.one_of(
        st.binary(max_size=300),
        st.builds(lambda n, c: c * n, st.integers(0, 20_000), st.sampled_from([b"[", b"{", b'{"a":', b'["'])),
        st.builds(lambda s: s.encode("utf-8", "surrogatepass"), st.text(max_size=200)),
    ),
    content_type=content_types,
)
def test_manifest_bytes(target: Target, payload: bytes, content_type: str) -> None:
    reply = put_manifest(target, "bytes", payload, content_type)
    check(reply, {201, 400, 413}, MANIFEST_CODES, "PUT")


@fuzz("digests")
@given(digest=digests, method=st.sampled_from(["GET", "HEAD", "DELETE-MANIFEST", "GET-MANIFEST", "POST", "PUT"]))
def test_digests(target: Target, digest: str, method: str) -> None:
    before = target.stored()
    quoted = quote(digest, safe="")
    if method in ("GET", "HEAD"):
        reply = target.request(method, f"/v2/{REPO}/blobs/{quoted}")
        check(reply, {200, 400, 404}, {"DIGEST_INVALID", "BLOB_UNKNOWN", "NAME_UNKNOWN"}, method)
    elif method == "GET-MANIFEST":
        reply = target.request("GET", f"/v2/{REPO}/manifests/{quoted}")
        check(reply, {400, 404}, {"DIGEST_INVALID", "MANIFEST_UNKNOWN", "TAG_INVALID", "NAME_UNKNOWN"})
    elif method == "DELETE-MANIFEST":
        reply = target.request("DELETE", f"/v2/{REPO}/manifests/{quoted}")
        codes = {"DIGEST_INVALID", "MANIFEST_UNKNOWN", "TAG_INVALID", "UNSUPPORTED", "NAME_UNKNOWN"}
        check(reply, {400, 404, 405}, codes)
    elif method == "POST":  # monolithic upload whose body does not match (or the digest is malformed)
        reply = target.request("POST", f"/v2/{REPO}/blobs/uploads/", f"digest={quoted}", body=b"not it")
        check(reply, {400} | ({202} if not digest else set()), {"DIGEST_INVALID", "BLOB_UPLOAD_INVALID"}, "POST")
    else:  # finishing a session with a wrong or malformed digest (a finish claims its session: a new one each)
        location = target.runner.run(start_upload(target.registry.client, REPO))
        before = target.stored()
        reply = target.request("PUT", location, f"digest={quoted}")
        check(reply, {400}, {"DIGEST_INVALID", "BLOB_UPLOAD_INVALID"}, "PUT")
    if reply.status >= 400:
        assert _without_uploads(target.stored()) == _without_uploads(before)


def _without_uploads(files: frozenset[tuple[str, int]]) -> frozenset[tuple[str, int]]:
    """What a reader can see: staging of upload sessions (opened by the test itself) left out."""
    return frozenset(f for f in files if not f[0].startswith("upload:") and "/_uploads/" not in f[0])


@fuzz("names")
@given(name=names, endpoint=st.sampled_from(["tags/list", "manifests/latest", "blobs/uploads/", "blobs/" + KNOWN[0]]))
def test_repository_names(target: Target, name: str, endpoint: str) -> None:
    before = target.stored()
    method = "POST" if endpoint == "blobs/uploads/" else "GET"
    reply = target.request(method, f"/v2/{quote(name, safe='/')}/{endpoint}")
    codes = {"NAME_INVALID", "NAME_UNKNOWN", "UNAUTHORIZED", "DENIED", "MANIFEST_UNKNOWN", "BLOB_UNKNOWN"}
    check(reply, {200, 202, 400, 401, 403, 404, 405}, codes | {"UNSUPPORTED"}, method)
    if reply.status >= 400:
        assert target.stored() == before


@fuzz("tags")
@given(tag=tags, method=st.sampled_from(["PUT", "GET", "DELETE"]))
def test_tags(target: Target, tag: str, method: str) -> None:
    if method == "PUT":
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": mt.OCI_MANIFEST,
                "config": descriptor(mt.OCI_CONFIG, CONFIG),
                "layers": [descriptor(LAYER, LAYER_BYTES)],
            }
        ).encode()
        reply = put_manifest(target, tag, manifest, mt.OCI_MANIFEST)
        check(reply, {201, 400, 404, 405}, {"TAG_INVALID", "DIGEST_INVALID", "NAME_UNKNOWN", "UNSUPPORTED"}, "PUT")
        if reply.status == 201:
            listed = target.request("GET", f"/v2/{REPO}/tags/list").body
            assert tag in json.loads(listed)["tags"]
        return
    before = target.stored()
    reply = target.request(method, f"/v2/{REPO}/manifests/{quote(tag, safe='')}")
    codes = {"TAG_INVALID", "DIGEST_INVALID", "MANIFEST_UNKNOWN", "NAME_UNKNOWN", "UNSUPPORTED"}
    check(reply, {200, 202, 400, 404, 405}, codes, method)
    if reply.status >= 400:
        assert target.stored() == before


range_values = st.one_of(
    st.builds(
        lambda a, b: f"bytes={a}-{b}",
        st.one_of(st.integers(-5, 200), st.just("")),
        st.one_of(st.integers(-5, 200), st.just("")),
    ),
    st.builds(lambda a, b: f"bytes={a}-{b},{b}-", st.integers(0, 120), st.integers(0, 120)),
    st.builds(lambda n: f"bytes=-{n}", st.integers(-3, 300)),
    st.text(max_size=40),
    st.builds(lambda n: f"bytes={n}-", st.integers(0, 2**80)),
)


@fuzz("ranges")
@given(value=range_values, method=st.sampled_from(["GET", "HEAD"]))
def test_blob_ranges(target: Target, value: str, method: str) -> None:
    reply = target.request(method, f"/v2/{REPO}/blobs/{digest_of(BLOB)}", headers={"range": value})
    check(reply, {200, 206, 400, 416}, {"BLOB_UPLOAD_INVALID", "RANGE_INVALID", "SIZE_INVALID"}, method)
    if reply.status == 206 and method == "GET":
        first, _, last = reply.headers["content-range"].removeprefix("bytes ").partition("/")[0].partition("-")
        assert reply.body == BLOB[int(first) : int(last) + 1]
    if reply.status == 200 and method == "GET":
        assert reply.body == BLOB


content_range_values = st.one_of(
    st.builds(lambda a, b: f"{a}-{b}", st.integers(-3, 3000), st.integers(-3, 3000)),
    st.builds(lambda a, b: f"bytes {a}-{b}/*", st.integers(0, 3000), st.integers(0, 3000)),
    st.text(max_size=30),
    st.builds(lambda a: f"{a}-{a + 9}", st.integers(0, 2**70)),
)


@fuzz("content_ranges")
@given(value=content_range_values, chunk=st.binary(min_size=0, max_size=20))
def test_upload_content_ranges(target: Target, value: str, chunk: bytes) -> None:
    location = target.upload
    status_before = target.request("GET", location)
    assert status_before.status == 204, status_before.body
    files_before = target.stored()
    reply = target.request(
        "PATCH", location, headers={"content-range": value, "content-type": "application/octet-stream"}, body=chunk
    )
    check(reply, {202, 400, 416}, {"BLOB_UPLOAD_INVALID", "SIZE_INVALID", "RANGE_INVALID"}, "PATCH")
    if reply.status >= 400:
        after = target.request("GET", location)
        assert after.headers["range"] == status_before.headers["range"], "a refused chunk moved the upload"
        assert target.stored() == files_before


pagination = st.one_of(st.integers(-5, 2**70).map(str), st.text(max_size=20), st.just(""))


@fuzz("pagination")
@given(n=st.one_of(st.none(), pagination), last=st.one_of(st.none(), st.text(max_size=300)), what=st.booleans())
def test_pagination(target: Target, n: str | None, last: str | None, what: bool) -> None:
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in (("n", n), ("last", last)) if v is not None)
    path = "/v2/_catalog" if what else f"/v2/{REPO}/tags/list"
    reply = target.request("GET", path, query)
    check(reply, {200, 400}, {"PAGINATION_NUMBER_INVALID", "NAME_INVALID", "TAG_INVALID"})
    if reply.status == 200:
        listed = json.loads(reply.body)
        key = "repositories" if what else "tags"
        assert isinstance(listed[key], list)
        if n is not None and n.isdigit():
            assert len(listed[key]) <= int(n)

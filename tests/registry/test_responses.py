"""``SmallResponse`` / ``json_response``: the same bytes and headers Starlette's ``JSONResponse`` sends."""

from __future__ import annotations

from starlette.responses import JSONResponse

from tests.registry.sending import sent
from trustyard.registry.responses import SmallResponse, json_response


async def test_json_as_starlette_renders_it() -> None:
    content = {"name": "lib/alpine", "tags": ["latest", "ünï"]}
    ours, theirs = await sent(json_response(content)), await sent(JSONResponse(content))
    assert ours[1]["body"] == theirs[1]["body"]
    assert sorted(ours[0]["headers"]) == sorted(theirs[0]["headers"])
    assert ours[0]["status"] == theirs[0]["status"] == 200


async def test_a_link_header() -> None:
    start, body = await sent(json_response({"repositories": ["a"]}, '</v2/_catalog?n=1&last=a>; rel="next"'))
    assert (b"link", b'</v2/_catalog?n=1&last=a>; rel="next"') in start["headers"]
    assert body == {"type": "http.response.body", "body": b'{"repositories":["a"]}'}


async def test_headers_go_out_as_given() -> None:
    headers = [(b"content-length", b"3"), (b"content-type", b"application/octet-stream")]
    start, body = await sent(SmallResponse(b"", headers, 200))
    assert start == {"type": "http.response.start", "status": 200, "headers": headers}
    assert body["body"] == b""

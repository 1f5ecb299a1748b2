"""``/v2/<name>/manifests/<reference>``: GET and HEAD by tag or digest, PUT (with ``?tag=``), DELETE."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from trustyard.oci import mediatypes as mt
from trustyard.oci.names import Tag, parse_reference
from trustyard.registry.http import actor, read_limited, repository, services
from trustyard.registry.responses import SmallResponse
from trustyard.services.actor import Action


async def get_manifest(request: Request) -> Response:
    name, reference = repository(request), parse_reference(request.path_params["reference"])
    row = await services(request).manifests.get(actor(request), name, reference)
    digest = row.digest.encode()
    headers = [
        (b"docker-content-digest", digest),
        (b"etag", b'"%s"' % digest),
        (b"content-length", str(row.size).encode()),
        (b"content-type", row.media_type.encode("latin-1")),
    ]
    return SmallResponse(b"" if request.method == "HEAD" else row.payload, headers)


async def put_manifest(request: Request) -> Response:
    name, reference = repository(request), parse_reference(request.path_params["reference"])
    extra_tags = [Tag.parse(t) for t in request.query_params.getlist("tag")]
    caller = actor(request)
    caller.require(name, Action.PUSH)  # before reading up to 4 MiB from someone who may not push here
    payload = await read_limited(request, mt.MAX_MANIFEST_BYTES)
    pushed = await services(request).manifests.put(
        caller, name, reference, request.headers.get("content-type"), payload, extra_tags
    )
    headers = {
        "Location": f"/v2/{name}/manifests/{pushed.digest}",
        "Docker-Content-Digest": str(pushed.digest),
    }
    if pushed.subject is not None:
        headers["OCI-Subject"] = str(pushed.subject)
    response = Response(status_code=201, headers=headers)
    for tag in pushed.tags:  # one header per tag the push created, as the spec asks for ?tag= pushes
        response.headers.append("OCI-Tag", tag)
    return response


async def delete_manifest(request: Request) -> Response:
    name, reference = repository(request), parse_reference(request.path_params["reference"])
    await services(request).manifests.delete(actor(request), name, reference)
    return Response(status_code=202)

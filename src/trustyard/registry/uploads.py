"""``/v2/<name>/blobs/uploads/``: start (session, monolithic, mount), PATCH chunks, status, PUT, cancel."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from trustyard.oci.digest import Digest
from trustyard.oci.names import RepositoryName
from trustyard.registry.http import actor, body_stream, repository, services, upload_range
from trustyard.services.blobs import BlobInfo
from trustyard.services.uploads import UploadStatus, parse_content_range


async def start_upload(request: Request) -> Response:
    name, caller, uploads = repository(request), actor(request), services(request).uploads
    mount, source = request.query_params.get("mount"), request.query_params.get("from")
    if mount:  # without `from`: from any repository holding it that the caller may pull
        from_repository = RepositoryName.parse(source) if source else None
        mounted = await uploads.mount(caller, name, Digest.parse(mount), from_repository)
        if mounted is not None:
            return _created(name, mounted)
    digest = request.query_params.get("digest")
    if digest:
        info = await uploads.monolithic(caller, name, Digest.parse(digest), body_stream(request))
        return _created(name, info)
    status = await uploads.start(caller, name)
    return _in_progress(status, 202, uploads.min_chunk_size)


async def patch_upload(request: Request) -> Response:
    name, uploads = repository(request), services(request).uploads
    header = request.headers.get("content-range")
    content_range = parse_content_range(header) if header else None
    status = await uploads.append(
        actor(request), name, request.path_params["upload"], body_stream(request), content_range
    )
    return _in_progress(status, 202, uploads.min_chunk_size)


async def upload_status(request: Request) -> Response:
    uploads = services(request).uploads
    status = await uploads.status(actor(request), repository(request), request.path_params["upload"])
    return _in_progress(status, 204, uploads.min_chunk_size)


async def finish_upload(request: Request) -> Response:
    name = repository(request)
    digest = Digest.parse(request.query_params.get("digest", ""))
    has_body = request.headers.get("content-length", "0") != "0" or "chunked" in request.headers.get(
        "transfer-encoding", ""
    )
    header = request.headers.get("content-range")
    info = await services(request).uploads.complete(
        actor(request),
        name,
        request.path_params["upload"],
        digest,
        body_stream(request) if has_body else None,
        parse_content_range(header) if header and has_body else None,
    )
    return _created(name, info)


async def cancel_upload(request: Request) -> Response:
    await services(request).uploads.cancel(actor(request), repository(request), request.path_params["upload"])
    return Response(status_code=204)


def _created(name: RepositoryName, info: BlobInfo) -> Response:
    return Response(
        status_code=201,
        headers={"Location": f"/v2/{name}/blobs/{info.digest}", "Docker-Content-Digest": str(info.digest)},
    )


def _in_progress(status: UploadStatus, code: int, min_chunk: int) -> Response:
    headers = {
        "Location": f"/v2/{status.repository}/blobs/uploads/{status.id}",
        "Range": upload_range(status.size),
        "Docker-Upload-UUID": status.id,
    }
    if min_chunk > 1:
        headers["OCI-Chunk-Min-Length"] = str(min_chunk)
    return Response(status_code=code, headers=headers)

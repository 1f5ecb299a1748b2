"""``/v2/<name>/referrers/<digest>``: manifests whose subject is ``digest``, optionally by ``artifactType``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from trustyard.oci import mediatypes as mt
from trustyard.oci.digest import Digest
from trustyard.registry.http import actor, repository, services


async def list_referrers(request: Request) -> Response:
    name, subject = repository(request), Digest.parse(request.path_params["digest"])
    artifact_type = request.query_params.get("artifactType") or None
    found = await services(request).referrers.list(actor(request), name, subject, artifact_type)
    headers = {"OCI-Filters-Applied": "artifactType"} if found.filtered else {}
    return Response(found.payload, media_type=mt.OCI_INDEX, headers=headers)

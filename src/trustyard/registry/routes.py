"""The /v2 route table. Upload routes come before blob routes: ``blobs/uploads`` must not parse as a digest.
Every /v2 endpoint is ``identified``: it takes HTTP Basic credentials as well as Bearer tokens."""

from __future__ import annotations

from starlette.routing import Route

from trustyard.registry import base, blobs, ca, catalog, manifests, referrers, tags, token, uploads
from trustyard.registry.http import identified

N = "/v2/{name:path}"

routes = [
    Route("/ca", ca.ca_certificate, methods=["GET"]),
    Route("/auth/token", token.get_token, methods=["GET"]),
    Route("/auth/token", token.post_token, methods=["POST"]),
    Route("/auth/jwks", token.jwks, methods=["GET"]),
    Route("/v2/", identified(base.version_check), methods=["GET"]),
    Route("/v2/_catalog", identified(catalog.catalog), methods=["GET"]),
    Route(f"{N}/blobs/uploads/", identified(uploads.start_upload), methods=["POST"]),
    Route(f"{N}/blobs/uploads", identified(uploads.start_upload), methods=["POST"]),
    Route(f"{N}/blobs/uploads/{{upload}}", identified(uploads.patch_upload), methods=["PATCH"]),
    Route(f"{N}/blobs/uploads/{{upload}}", identified(uploads.finish_upload), methods=["PUT"]),
    Route(f"{N}/blobs/uploads/{{upload}}", identified(uploads.upload_status), methods=["GET"]),
    Route(f"{N}/blobs/uploads/{{upload}}", identified(uploads.cancel_upload), methods=["DELETE"]),
    Route(f"{N}/blobs/{{digest}}", identified(blobs.get_blob), methods=["GET", "HEAD"]),
    Route(f"{N}/blobs/{{digest}}", identified(blobs.delete_blob), methods=["DELETE"]),
    Route(f"{N}/manifests/{{reference}}", identified(manifests.get_manifest), methods=["GET", "HEAD"]),
    Route(f"{N}/manifests/{{reference}}", identified(manifests.put_manifest), methods=["PUT"]),
    Route(f"{N}/manifests/{{reference}}", identified(manifests.delete_manifest), methods=["DELETE"]),
    Route(f"{N}/tags/list", identified(tags.list_tags), methods=["GET"]),
    Route(f"{N}/referrers/{{digest}}", identified(referrers.list_referrers), methods=["GET"]),
]

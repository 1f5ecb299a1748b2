"""The /v2 route table. Upload routes come before blob routes: ``blobs/uploads`` must not parse as a digest."""

from __future__ import annotations

from starlette.routing import Route

from trustyard.registry import base, blobs, ca, catalog, manifests, referrers, tags, token, uploads

N = "/v2/{name:path}"

routes = [
    Route("/ca", ca.ca_certificate, methods=["GET"]),
    Route("/auth/token", token.get_token, methods=["GET"]),
    Route("/auth/token", token.post_token, methods=["POST"]),
    Route("/auth/jwks", token.jwks, methods=["GET"]),
    Route("/v2/", base.version_check, methods=["GET"]),
    Route("/v2/_catalog", catalog.catalog, methods=["GET"]),
    Route(f"{N}/blobs/uploads/", uploads.start_upload, methods=["POST"]),
    Route(f"{N}/blobs/uploads", uploads.start_upload, methods=["POST"]),
    Route(f"{N}/blobs/uploads/{{upload}}", uploads.patch_upload, methods=["PATCH"]),
    Route(f"{N}/blobs/uploads/{{upload}}", uploads.finish_upload, methods=["PUT"]),
    Route(f"{N}/blobs/uploads/{{upload}}", uploads.upload_status, methods=["GET"]),
    Route(f"{N}/blobs/uploads/{{upload}}", uploads.cancel_upload, methods=["DELETE"]),
    Route(f"{N}/blobs/{{digest}}", blobs.get_blob, methods=["GET", "HEAD"]),
    Route(f"{N}/blobs/{{digest}}", blobs.delete_blob, methods=["DELETE"]),
    Route(f"{N}/manifests/{{reference}}", manifests.get_manifest, methods=["GET", "HEAD"]),
    Route(f"{N}/manifests/{{reference}}", manifests.put_manifest, methods=["PUT"]),
    Route(f"{N}/manifests/{{reference}}", manifests.delete_manifest, methods=["DELETE"]),
    Route(f"{N}/tags/list", tags.list_tags, methods=["GET"]),
    Route(f"{N}/referrers/{{digest}}", referrers.list_referrers, methods=["GET"]),
]

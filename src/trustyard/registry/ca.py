"""``GET /ca``: the registry's CA certificate (PEM), unauthenticated, so clients can start trusting it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from trustyard.errors import NotFound


async def ca_certificate(request: Request) -> Response:
    pem: bytes | None = request.app.state.ca_pem
    if pem is None:
        raise NotFound("this registry uses an operator-supplied certificate; ask the operator for its CA")
    return Response(
        pem, media_type="application/x-pem-file", headers={"Content-Disposition": 'inline; filename="ca.crt"'}
    )

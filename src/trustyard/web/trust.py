"""The "Trust this registry" page: the CA certificate to download (``/ca``), its fingerprint to compare, and
how each client and operating system trusts it. Open to everyone: a client needs it before logging in."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from trustyard.auth.certificates import fingerprint
from trustyard.web.http import registry_host, render
from trustyard.web.sessions import optional_actor


async def trust_page(request: Request) -> Response:
    caller = await optional_actor(request)
    pem: bytes | None = request.app.state.ca_pem
    return render(
        request,
        "trust.html",
        caller,
        section="trust",
        host=registry_host(request),
        url=f"{request.url.scheme}://{registry_host(request)}",
        fingerprint=fingerprint(pem) if pem else None,
    )

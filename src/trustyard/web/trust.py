"""The "Trust this registry" page: the CA certificate to download (``/ca``), its fingerprint to compare, and
how each client and operating system trusts it. Open to everyone: a client needs it before logging in."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from starlette.requests import Request
from starlette.responses import Response

from trustyard.web.http import registry_host, render
from trustyard.web.sessions import optional_actor


def fingerprint(pem: bytes) -> str:
    """SHA-256 of the certificate, as ``openssl x509 -noout -fingerprint -sha256`` prints it."""
    digest = x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256())
    return ":".join(f"{byte:02X}" for byte in digest)


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

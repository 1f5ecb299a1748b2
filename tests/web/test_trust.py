"""The Trust this registry page: open to everyone, the CA fingerprint and every client's instructions."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from tests.registry.conftest import Registry

from .conftest import Browser


async def test_trust_page(browser: Browser, registry: Registry) -> None:
    page = await browser.get("/trust")
    assert page.status_code == 200
    ca = x509.load_pem_x509_certificate((Path(registry.data_dir) / "tls" / "ca.crt").read_bytes())
    assert ca.fingerprint(hashes.SHA256()).hex(":").upper() in page.text
    for text in (
        'href="/ca"',
        "/etc/docker/certs.d/registry.test/ca.crt",
        "--cert-dir",
        "update-ca-certificates",
        "update-ca-trust",
        "security add-trusted-cert",
        "Import-Certificate",
    ):
        assert text in page.text, text
    assert "Log in" in page.text

"""The registry's own CA and server certificate: created once, private keys 0600, names as configured."""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path

from cryptography import x509

from trustyard.auth.certificates import default_names, describe, ensure_certificates


def _sans(path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(sans.get_values_for_type(x509.DNSName)) | {str(i) for i in sans.get_values_for_type(x509.IPAddress)}


def test_first_start_creates_a_ca_and_a_server_certificate(tmp_path: Path) -> None:
    files = ensure_certificates(tmp_path / "tls", default_names(["registry.example.com", "10.1.2.3"]))
    assert {"localhost", "127.0.0.1", "::1", "registry.example.com", "10.1.2.3"} <= _sans(files.cert)
    assert files.key.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "tls" / "ca.key").stat().st_mode & 0o777 == 0o600
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # Python's own TLS stack accepts the pair and the chain verifies against the CA.
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files.cert, files.key)
    client = ssl.create_default_context(cafile=files.ca_cert)
    assert client.cert_store_stats()["x509_ca"] == 1
    assert ipaddress.ip_address("::1")


def test_restart_keeps_the_ca_and_reissues_only_for_new_names(tmp_path: Path) -> None:
    first = ensure_certificates(tmp_path, ["localhost"])
    ca, cert = first.ca_cert.read_bytes(), first.cert.read_bytes()
    again = ensure_certificates(tmp_path, ["localhost"])
    assert again.cert.read_bytes() == cert
    grown = ensure_certificates(tmp_path, ["localhost", "new.example"])
    assert grown.ca_cert.read_bytes() == ca
    assert "new.example" in _sans(grown.cert)


def test_describe_reads_the_leaf_of_a_chain_file(tmp_path: Path) -> None:
    files = ensure_certificates(tmp_path / "tls", ["registry.example.com", "10.1.2.3"])
    facts = describe(files.cert.read_bytes())  # server.crt: the server certificate, then the CA
    assert set(facts.names) == {"registry.example.com", "10.1.2.3"}
    leaf = x509.load_pem_x509_certificate(files.cert.read_bytes())
    assert facts.not_after == leaf.not_valid_after_utc
    assert describe(files.ca_cert.read_bytes()).names == []  # the CA names no hosts

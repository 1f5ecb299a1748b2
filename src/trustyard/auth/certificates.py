"""The registry's own CA and server certificate, created on first start (or supplied by the operator).

Files live in ``DATA_DIR/tls``: ``ca.crt`` (what clients trust, served at ``GET /ca``), ``ca.key``,
``server.crt`` (the server certificate followed by the CA) and ``server.key``; keys are mode 0600 from the
moment they exist. The CA is kept for ten years; the server certificate lasts 825 days (the longest Apple
platforms accept from a private CA) and is re-issued from the same CA when it nears its end or lacks a name
the registry is now reached by, so clients that trust the CA keep working.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from trustyard.auth.tokens import write_private

CA_DAYS = 3650
SERVER_DAYS = 825
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True, slots=True)
class TlsFiles:
    ca_cert: Path
    cert: Path
    key: Path


def fingerprint(pem: bytes) -> str:
    """SHA-256 of the certificate, as ``openssl x509 -noout -fingerprint -sha256`` prints it (AB:CD:…)."""
    digest = x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256())
    return ":".join(f"{byte:02X}" for byte in digest)


@dataclass(frozen=True, slots=True)
class CertificateFacts:
    """What an operator checks on a certificate: the names it covers (SANs) and when it expires."""

    names: list[str]
    not_after: dt.datetime


def describe(pem: bytes) -> CertificateFacts:
    """The names and expiry of the first certificate in ``pem`` (the leaf, in a chain file)."""
    cert = x509.load_pem_x509_certificate(pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(name.value) for name in san]
    except x509.ExtensionNotFound:
        names = []
    return CertificateFacts(names, cert.not_valid_after_utc)


def default_names(extra: Iterable[str] = ()) -> list[str]:
    """The names a server certificate covers: this host's names, loopback, and the configured public names."""
    names = [socket.gethostname(), socket.getfqdn(), "localhost", "127.0.0.1", "::1", *extra]
    return list(dict.fromkeys(n.strip().lower() for n in names if n and n.strip()))


def ensure_certificates(directory: Path, names: Iterable[str]) -> TlsFiles:
    """Create the CA once, and a server certificate for ``names`` whenever the current one does not fit."""
    files = TlsFiles(directory / "ca.crt", directory / "server.crt", directory / "server.key")
    ca_key_path = directory / "ca.key"
    if not files.ca_cert.exists() or not ca_key_path.exists():
        _create_ca(files.ca_cert, ca_key_path)
    wanted = list(names)
    if not files.cert.exists() or not files.key.exists() or not _fits(files.cert, wanted):
        _create_server(files, ca_key_path, wanted)
    return files


def _fits(cert_path: Path, names: list[str]) -> bool:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    if cert.not_valid_after_utc - RENEW_BEFORE < dt.datetime.now(dt.UTC):
        return False
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    have = {n.lower() for n in sans.get_values_for_type(x509.DNSName)}
    have |= {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    return all(_normal(n) in have for n in names)


def _normal(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.lower()


def _create_ca(cert_path: Path, key_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "trustyard"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"trustyard CA {socket.gethostname()}"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(key_path, _key_pem(key))
    write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    cert_path.chmod(0o644)  # the CA certificate is public


def _create_server(files: TlsFiles, ca_key_path: Path, names: list[str]) -> None:
    ca_cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name.lower()))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "trustyard")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    write_private(files.key, _key_pem(key))
    chain = cert.public_bytes(serialization.Encoding.PEM) + files.ca_cert.read_bytes()
    write_private(files.cert, chain)
    files.cert.chmod(0o644)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )

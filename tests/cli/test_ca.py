"""``trustyard ca``: the CA's path and fingerprint, or a message saying why there is none."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from trustyard.auth.certificates import ensure_certificates
from trustyard.cli.main import main


def test_shows_the_path_and_the_openssl_style_fingerprint(tmp_path: Path) -> None:
    files = ensure_certificates(tmp_path / "tls", ["localhost"])
    expected = x509.load_pem_x509_certificate(files.ca_cert.read_bytes()).fingerprint(hashes.SHA256())
    result = CliRunner().invoke(main, ["ca", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"SHA-256 fingerprint: {expected.hex(':').upper()}" in result.output
    assert str(files.ca_cert.absolute()) in result.output


def test_without_a_ca_it_says_why(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["ca", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "`trustyard serve` creates it on first start" in result.output

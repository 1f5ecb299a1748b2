"""``trustyard ca``: where the registry's CA certificate is and its SHA-256 fingerprint, so that what a client
fetched from ``/ca`` (or saw on the web UI's Trust page) can be compared with what the server holds."""

from __future__ import annotations

from pathlib import Path

import click

from trustyard.auth.certificates import fingerprint
from trustyard.cli.command import CONFIG, DATA_DIR, JSON, done, settings


@click.command("ca")
@CONFIG
@DATA_DIR
@JSON
def ca(config_file: Path | None, data_dir: Path | None, as_json: bool) -> None:
    """Show the CA certificate's path and SHA-256 fingerprint (the one `curl -k https://HOST/ca` fetches)."""
    path = settings(config_file, data_dir).tls_dir / "ca.crt"
    if not path.exists():
        raise click.ClickException(
            f"no CA at {path}: `trustyard serve` creates it on first start "
            "(none is made with --tls-cert/--tls-key or --insecure-http)"
        )
    sha256 = ca_fingerprint(path)
    done(
        as_json,
        f"CA certificate:      {path.absolute()}\nSHA-256 fingerprint: {sha256}",
        path=str(path.absolute()),
        sha256=sha256,
    )


def ca_fingerprint(path: Path) -> str:
    return fingerprint(path.read_bytes())

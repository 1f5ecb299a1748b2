"""``trustyard ca``: where the registry's CA certificate is and its SHA-256 fingerprint, so that what a client
fetched from ``/ca`` (or saw on the web UI's Trust page) can be compared with what the server holds."""

from __future__ import annotations

from pathlib import Path

import click

from trustyard.auth.certificates import fingerprint
from trustyard.cli.accounts import CONFIG, DATA_DIR
from trustyard.config import load_settings
from trustyard.errors import TrustyardError


@click.command("ca")
@CONFIG
@DATA_DIR
def ca(config_file: Path | None, data_dir: Path | None) -> None:
    """Show the CA certificate's path and SHA-256 fingerprint (the one `curl -k https://HOST/ca` fetches)."""
    try:
        settings = load_settings(config_file, data_dir=data_dir)
    except TrustyardError as exc:
        raise click.ClickException(exc.message) from None
    path = settings.tls_dir / "ca.crt"
    if not path.exists():
        raise click.ClickException(
            f"no CA at {path}: `trustyard serve` creates it on first start "
            "(none is made with --tls-cert/--tls-key or --insecure-http)"
        )
    click.echo(f"CA certificate:      {path.absolute()}")
    click.echo(f"SHA-256 fingerprint: {ca_fingerprint(path)}")


def ca_fingerprint(path: Path) -> str:
    return fingerprint(path.read_bytes())

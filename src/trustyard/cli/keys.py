"""``trustyard keys rotate``: new shared keys for the cluster (the token signing key and the web session key),
for when one may have leaked (a copied database backup together with the secret key, a departed operator).

The keys live in the database (``services/shared_secrets.py``) and a node reads them when it starts, so the
command says to restart every node; from then on tokens, refresh tokens and web sessions made with the old
keys are refused. A token signing key the operator keeps in a file (``token_key``) is theirs to replace.
"""

from __future__ import annotations

from pathlib import Path

import click

from trustyard.app import rotate_shared_keys
from trustyard.cli.command import CONFIG, DATA_DIR, JSON, done, run_prepared, settings

RESTART = (
    "restart every node (trustyard serve) to use them: until it restarts, a node keeps signing and accepting "
    "tokens with the old key. After that, tokens and refresh tokens issued before are refused (docker, podman "
    "and skopeo fetch new tokens by themselves; a docker login kept as a refresh token must log in again) and "
    "everybody signs in to the web UI again"
)


@click.group()
def keys() -> None:
    """The keys every node shares: the token signing key and the web session key."""


@keys.command("rotate")
@CONFIG
@DATA_DIR
@JSON
def rotate(config_file: Path | None, data_dir: Path | None, as_json: bool) -> None:
    """Replace the token signing key and the web session key with new ones (for a key that may have leaked)."""
    configured = settings(config_file, data_dir)
    run_prepared(configured, rotate_shared_keys)
    sentence = f"rotated the token signing key and the web session key; {RESTART}."
    if configured.token_key is not None:
        sentence += (
            f"\nThis node signs tokens with its own token_key file, {configured.token_key}, which is not rotated: "
            "replace that file and restart to change it."
        )
    done(as_json, sentence, rotated=["token_key", "session_key"], token_key_file=configured.token_key, restart=True)

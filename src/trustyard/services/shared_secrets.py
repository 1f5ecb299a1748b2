"""The keys every node of a cluster must share to behave as one registry: the token signing key (a token one
node issues verifies on all) and the web session key (a session cookie survives hopping nodes). They live in
the SQL index, sealed with the operator's one secret key (``auth/secretbox.py``), so a node needs nothing but
that key, the database and the object store.

The first node to start creates them: it seals a fresh key (or adopts the one an older single-node data
directory kept in ``keys/token.pem`` / ``keys/session.key``) and inserts it only if no row is there yet, then
every node, the first included, reads back the row that won. A node whose secret key cannot open the rows
stops with one sentence saying which key it needs.

``rotate`` replaces both with fresh ones (``trustyard keys rotate``: a key that may have leaked). A node reads
them when it starts, so every node is restarted after a rotation; tokens and sessions made with the old keys
are refused from then on. The legacy files of this data directory are removed then, so that no copy of a
retired key stays on disk here and a restart does not warn that they differ.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from trustyard.auth.secretbox import SecretBox
from trustyard.auth.tokens import new_signing_key_pem
from trustyard.db.shared_secrets import SharedSecretStore
from trustyard.errors import ConfigInvalid

TOKEN_KEY = "token_key"
SESSION_KEY = "session_key"
#: Where a single-node data directory kept them before they moved into the database (under ``keys/``).
TOKEN_FILE, SESSION_FILE = "token.pem", "session.key"
#: What a node says when its secret key does not open the cluster's secrets (checked at every start).
WRONG_KEY = (
    "this node's secret key cannot open the secrets stored in the database by the node that started first: "
    "give every node the same key, in TRUSTYARD_SECRET_KEY or in the file named by secret_key_file "
    "(a key trustyard generated is in the first node's DATA_DIR/keys/secret.key)"
)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeKeys:
    """The shared keys in the clear, for this process only: the token signing key (PEM) and the session key."""

    token_key: bytes
    session_key: bytes


class SharedSecrets:
    def __init__(self, store: SharedSecretStore, box: SecretBox, node: str) -> None:
        self._store = store
        self._box = box
        self._node = node

    async def ensure(self, legacy_keys: Path) -> NodeKeys:
        """Create the shared keys unless another node did (adopting ``legacy_keys/token.pem`` and
        ``legacy_keys/session.key`` when this data directory has them), then return the stored ones."""
        token = await self._ensure(TOKEN_KEY, legacy_keys / TOKEN_FILE, new_signing_key_pem)
        session = await self._ensure(SESSION_KEY, legacy_keys / SESSION_FILE, _new_session_key)
        return NodeKeys(token, session)

    async def rotate(self, legacy_keys: Path, keep: Path | None) -> NodeKeys:
        """Replace both shared keys with new ones, in one transaction, and remove this data directory's legacy
        copies of the old ones (but ``keep``, the operator's own ``token_key`` file); returns the new keys."""
        keys = NodeKeys(new_signing_key_pem(), _new_session_key())
        sealed = {TOKEN_KEY: keys.token_key, SESSION_KEY: keys.session_key}
        await self._store.replace({name: self._box.seal(value.decode()) for name, value in sealed.items()}, self._node)
        _remove_legacy(legacy_keys, keep)  # two small files: not worth a thread
        log.warning("rotated the token signing key and the web session key: restart every node to use them")
        return keys

    async def keys(self) -> NodeKeys | None:
        """The stored keys; None before any node created them."""
        token, session = await self._store.get(TOKEN_KEY), await self._store.get(SESSION_KEY)
        if token is None or session is None:
            return None
        return NodeKeys(self._open(token), self._open(session))

    async def _ensure(self, name: str, legacy: Path, create: Callable[[], bytes]) -> bytes:
        kept = _read(legacy)  # a few hundred bytes: not worth a thread
        sealed = await self._store.get(name)
        if sealed is None:
            value = kept if kept is not None else create()
            await self._store.insert_if_absent(name, self._box.seal(value.decode()), self._node)
            sealed = await self._store.get(name)
            if sealed is None:  # pragma: no cover - a row never vanishes: nothing deletes them
                raise ConfigInvalid(f"the shared secret {name} could not be stored")
        value = self._open(sealed)
        if kept is not None and kept != value:
            log.warning("%s differs from the cluster's key in the database, which this node uses instead", legacy)
        return value

    def _open(self, sealed: str) -> bytes:
        try:
            return self._box.open(sealed).encode()
        except ConfigInvalid:
            raise ConfigInvalid(WRONG_KEY) from None


def _remove_legacy(legacy_keys: Path, keep: Path | None) -> None:
    for name in (TOKEN_FILE, SESSION_FILE):
        legacy = legacy_keys / name
        if keep is None or legacy.resolve() != keep.resolve():
            legacy.unlink(missing_ok=True)


def _new_session_key() -> bytes:
    return secrets.token_hex(32).encode()


def _read(path: Path) -> bytes | None:
    return path.read_bytes().strip() if path.is_file() else None

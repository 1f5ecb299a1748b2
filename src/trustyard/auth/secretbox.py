"""SecretBox: secrets at rest sealed with the operator's one key: the keys nodes share (token signing, web
sessions; services/shared_secrets.py), storage credentials in runtime settings, webhook secrets.

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) rather than anything hand-made. The key comes from
``TRUSTYARD_SECRET_KEY``, a ``secret_key_file``, or a file in the data directory created on first start;
every node of a cluster needs the same key.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

from trustyard.errors import ConfigInvalid


class SecretBox:
    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError):
            raise ConfigInvalid(
                "the secret key must be 32 url-safe base64-encoded bytes (Fernet.generate_key())"
            ) from None

    @staticmethod
    def new_key() -> bytes:
        return Fernet.generate_key()

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise ConfigInvalid(
                "a stored secret cannot be decrypted: the secret key changed (set TRUSTYARD_SECRET_KEY to the key "
                "the secret was saved with, or save the storage settings again)"
            ) from None

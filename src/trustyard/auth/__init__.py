"""Identity: password and app-token hashing, Docker token scopes, token signing and verification, the TLS
certificates, and the pure permission policy. Independent of ``db`` and ``storage``; no I/O but key files."""

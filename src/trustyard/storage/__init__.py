"""Bytes: the StorageDriver protocol, the key layout, and one module per backend."""

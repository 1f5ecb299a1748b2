"""trustyard: a self-hosted, trusted container registry (OCI Distribution v1.1 and Docker Registry v2)."""

__version__ = "0.1.0"

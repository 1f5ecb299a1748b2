"""The registry edge: the OCI Distribution / Docker Registry v2 HTTP API at ``/v2``, parsed and rendered here."""

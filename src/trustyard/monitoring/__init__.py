"""The operator's edge: health and readiness probes, Prometheus metrics, and per-request measurement."""
